"""`mailer subscribers export`: CSV, JSON and JSON Lines, with filters, on both backends."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy.orm import Session, sessionmaker

from mailer.database.connect import session_scope
from subscribers.exporter import write_export
from subscribers.queries import SubscriberFilter


@pytest.fixture
def people(run_cli) -> None:
    run_cli("lists", "create", "nieuwsbrief", "--title", "GT Nieuwsbrief")
    run_cli("lists", "create", "regio-noord", "--title", "Regio Noord")
    run_cli("subscribers", "add", "anna@x.nl", "--name", "Anna de Vries", "--region", "Noord",
            "--organisation", "Gemeente Groningen", "--list", "nieuwsbrief",
            "--list", "regio-noord", "--attr", "sector=ICT")
    run_cli("subscribers", "add", "bert@x.nl", "--name", "Bert; \"B\" Smit", "--region", "Zuid",
            "--language", "en", "--list", "nieuwsbrief", "--attr", "team=Inkoop")
    run_cli("subscribers", "add", "cees@x.nl", "--name", "Cees", "--region", "Noord")
    run_cli("subscribers", "unsubscribe", "cees@x.nl")


def test_json_has_the_agreed_fields(run_cli, people):
    records = json.loads(run_cli("subscribers", "export", "--format", "json").output)
    assert [r["email"] for r in records] == ["anna@x.nl", "bert@x.nl", "cees@x.nl"]
    anna = records[0]
    for key in ("email", "name", "organisation", "region", "language", "status", "lists",
                "attributes", "created_at"):
        assert key in anna
    assert anna["lists"] == ["nieuwsbrief", "regio-noord"]
    assert anna["attributes"] == {"sector": "ICT"}
    assert anna["organisation"] == "Gemeente Groningen"
    assert records[2]["status"] == "unsubscribed" and records[2]["lists"] == []


def test_filters(run_cli, people):
    def emails(*args: str) -> list[str]:
        out = run_cli("subscribers", "export", "--format", "jsonl", *args).output
        return [json.loads(line)["email"] for line in out.splitlines()]

    assert emails("--list", "regio-noord") == ["anna@x.nl"]
    assert emails("--list", "nieuwsbrief", "--region", "zuid") == ["bert@x.nl"]
    assert emails("--status", "unsubscribed") == ["cees@x.nl"]
    assert emails("--region", "Noord", "--status", "active") == ["anna@x.nl"]
    assert emails("--list", "regio-noord", "--status", "blocked") == []
    assert json.loads(
        run_cli("subscribers", "export", "--format", "json", "--status", "blocked").output
    ) == []


def test_csv_file_with_attribute_columns(run_cli, people, tmp_path):
    target = tmp_path / "export.csv"
    result = run_cli("subscribers", "export", "-o", str(target), "--list", "nieuwsbrief")
    assert f"Exported 2 subscribers to {target}." in result.output
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")  # so Excel reads it as UTF-8
    with target.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["email", "name", "organisation", "job_title", "region",
                             "language", "status", "lists", "created_at", "updated_at",
                             "sector", "team"]
    assert rows[0]["lists"] == "nieuwsbrief regio-noord"
    assert (rows[0]["sector"], rows[0]["team"]) == ("ICT", "")
    assert rows[1]["name"] == 'Bert; "B" Smit'
    assert not list(tmp_path.glob("*.partial"))


def test_semicolon_csv_to_stdout(run_cli, people):
    out = run_cli("subscribers", "export", "--delimiter", ";", "--region", "Zuid").output
    rows = list(csv.reader(io.StringIO(out), delimiter=";"))
    assert rows[1][:2] == ["bert@x.nl", 'Bert; "B" Smit']


def test_user_errors(run_cli, people, tmp_path):
    for args, needle in (
        (("--list", "onbekend"), "no list 'onbekend'"),
        (("--region", "Atlantis"), "unknown region 'Atlantis'"),
        (("-o", str(tmp_path / "missing-dir" / "x.csv")), "x.csv"),
    ):
        result = run_cli("subscribers", "export", *args, ok=False)
        assert result.exit_code == 1, result.output
        assert needle in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_streams_in_pages(sessions: sessionmaker[Session], run_cli, people):
    # Pages smaller than the result: every person once, lists per page in one query.
    from subscribers import exporter

    with session_scope(sessions) as session:
        records = list(exporter.export_records(session, SubscriberFilter(), page_size=1))
        out = io.StringIO()
        count = write_export(session, SubscriberFilter(regions=("Noord",)), out, fmt="json")
    assert [r["email"] for r in records] == ["anna@x.nl", "bert@x.nl", "cees@x.nl"]
    assert records[0]["lists"] == ["nieuwsbrief", "regio-noord"]
    assert count == 2 and len(json.loads(out.getvalue())) == 2


def test_list_filter_counts_only_active_subscriptions(run_cli, people):
    run_cli("subscribers", "unsubscribe", "bert@x.nl", "--list", "nieuwsbrief")
    out = run_cli("subscribers", "export", "--format", "jsonl", "--list", "nieuwsbrief").output
    assert [json.loads(line)["email"] for line in out.splitlines()] == ["anna@x.nl"]
