"""`mailer subscribers add|ls|show|edit|unsubscribe|block|erase` on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailer.campaigns.models import Campaign, Delivery
from mailer.database.connect import session_scope
from subscribers.models import ConsentEvent, Subscriber, Suppression
from subscribers.service import email_hash


@pytest.fixture
def lists(run_cli) -> None:
    run_cli("lists", "create", "nieuwsbrief", "--title", "GT Nieuwsbrief")
    run_cli("lists", "create", "regio-noord", "--title", "Regio Noord")


def show(run_cli, email: str) -> dict:
    return json.loads(run_cli("subscribers", "show", email, "--json").output)


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0]


def test_add_and_show_everything_held(run_cli, lists):
    result = run_cli(
        "subscribers", "add", "Anna.deVries@Utrecht.nl", "--name", "Anna de Vries",
        "--organisation", "Gemeente Utrecht", "--job-title", "Inkoper", "--region", "midden",
        "--language", "en", "--list", "nieuwsbrief", "--list", "regio-noord",
        "--attr", "sector=ICT",
    )
    assert "Added Anna.deVries@utrecht.nl on nieuwsbrief, regio-noord." in result.output
    record = show(run_cli, "anna.devries@utrecht.nl")
    assert record["email"] == "Anna.deVries@utrecht.nl"
    assert (record["name"], record["organisation"], record["job_title"]) == (
        "Anna de Vries", "Gemeente Utrecht", "Inkoper")
    assert (record["region"], record["language"], record["status"]) == ("Midden", "en", "active")
    assert record["attributes"] == {"sector": "ICT"}
    assert record["lists"] == ["nieuwsbrief", "regio-noord"]
    assert record["consent"]["source"] == "cli" and record["consent"]["at"]
    actions = [(e["action"], e["list"]) for e in record["consent_history"]]
    assert actions == [("created", None), ("subscribe", "nieuwsbrief"),
                       ("subscribe", "regio-noord")]
    assert record["suppressed"] is False
    assert record["deliveries"] == []

    text = run_cli("subscribers", "show", "anna.devries@utrecht.nl").output
    assert "Anna de Vries" in text and "consent history" in text and "sector" in text


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("not-an-address",), ("invalid e-mail address", "not-an-address")),
        (("a@x.nl", "--region", "Atlantis"), ("unknown region 'Atlantis'",)),
        (("a@x.nl", "--language", "fr"), ("unknown language 'fr'",)),
        (("a@x.nl", "--list", "onbekend"), ("no list 'onbekend'",)),
        (("a@x.nl", "--attr", "novalue"), ("KEY=VALUE",)),
    ],
)
def test_add_user_errors(run_cli, args, needles):
    one_line_error(run_cli("subscribers", "add", *args, ok=False), *needles)
    assert json.loads(run_cli("subscribers", "ls", "--json").output) == []


def test_add_twice_and_unknown_person(run_cli):
    run_cli("subscribers", "add", "a@x.nl")
    one_line_error(run_cli("subscribers", "add", "A@X.NL", ok=False), "exists already")
    for command in ("show", "erase", "block", "unsubscribe"):
        one_line_error(run_cli("subscribers", command, "nobody@x.nl", ok=False),
                       "no subscriber 'nobody@x.nl'")
    one_line_error(run_cli("subscribers", "edit", "nobody@x.nl", "--name", "N", ok=False),
                   "no subscriber")


def test_ls_filters_table_and_limit(run_cli, lists):
    run_cli("subscribers", "add", "a@x.nl", "--name", "Anna", "--region", "Noord",
            "--list", "regio-noord")
    run_cli("subscribers", "add", "b@x.nl", "--name", "Bert", "--region", "Zuid",
            "--organisation", "Gemeente Breda", "--list", "nieuwsbrief")
    run_cli("subscribers", "add", "c@x.nl", "--name", "Cees", "--language", "en")
    run_cli("subscribers", "block", "c@x.nl")

    def emails(*args: str) -> list[str]:
        rows = json.loads(run_cli("subscribers", "ls", *args, "--json").output)
        return [r["email"] for r in rows]

    assert emails() == ["a@x.nl", "b@x.nl", "c@x.nl"]
    assert emails("--list", "regio-noord") == ["a@x.nl"]
    assert emails("--region", "zuid") == ["b@x.nl"]
    assert emails("--status", "blocked") == ["c@x.nl"]
    assert emails("--language", "en") == ["c@x.nl"]
    assert emails("--organisation", "gemeente breda") == ["b@x.nl"]
    assert emails("--search", "bert") == ["b@x.nl"]
    assert emails("--limit", "2") == ["a@x.nl", "b@x.nl"]

    table = run_cli("subscribers", "ls").output
    assert "a@x.nl" in table and "Gemeente Breda" in table and "regio-noord" in table
    limited = run_cli("subscribers", "ls", "--limit", "1").output
    assert "Showing 1 of 3" in limited

    one_line_error(run_cli("subscribers", "ls", "--region", "Atlantis", ok=False),
                   "unknown region")
    one_line_error(run_cli("subscribers", "ls", "--list", "onbekend", ok=False), "no list")


def test_ls_and_export_filter_on_job_title_and_attributes(run_cli, lists, tmp_path):
    run_cli("subscribers", "add", "a@x.nl", "--job-title", "Beleidsadviseur",
            "--attr", "sector=ICT", "--attr", "team=Inkoop")
    run_cli("subscribers", "add", "b@x.nl", "--job-title", "Inkoper", "--attr", "sector=Zorg")
    run_cli("subscribers", "add", "c@x.nl", "--job-title", "beleidsadviseur",
            "--attr", "sector=Onderwijs")

    def emails(*args: str) -> list[str]:
        rows = json.loads(run_cli("subscribers", "ls", *args, "--json").output)
        return [r["email"] for r in rows]

    # As the campaigns' audiences: case-insensitive, one key twice is either value, keys AND.
    assert emails("--job-title", "BELEIDSADVISEUR") == ["a@x.nl", "c@x.nl"]
    assert emails("--job-title", "Inkoper", "--job-title", "beleidsadviseur") == [
        "a@x.nl", "b@x.nl", "c@x.nl"]
    assert emails("--attr", "sector=ict") == ["a@x.nl"]
    assert emails("--attr", "sector=ICT", "--attr", "sector=Zorg") == ["a@x.nl", "b@x.nl"]
    assert emails("--attr", "sector=ICT", "--attr", "team=Inkoop") == ["a@x.nl"]
    assert emails("--attr", "sector=Zorg", "--attr", "team=Inkoop") == []
    assert emails("--job-title", "beleidsadviseur", "--attr", "sector=Onderwijs") == ["c@x.nl"]
    assert emails("--attr", "team=") == []

    out = tmp_path / "ict-zorg.csv"
    result = run_cli("subscribers", "export", "--attr", "sector=ICT", "--attr", "sector=Zorg",
                     "-o", str(out))
    assert "Exported 2 subscribers" in result.output
    assert "a@x.nl" in out.read_text("utf-8-sig") and "c@x.nl" not in out.read_text("utf-8-sig")
    exported = json.loads(run_cli("subscribers", "export", "--job-title", "inkoper",
                                  "--format", "json").output)
    assert [r["email"] for r in exported] == ["b@x.nl"]

    for command in ("ls", "export"):
        one_line_error(run_cli("subscribers", command, "--attr", "sector", ok=False),
                       "--attr 'sector': use KEY=VALUE")
        one_line_error(run_cli("subscribers", command, "--attr", "=ICT", ok=False), "KEY=VALUE")


def test_edit(run_cli, lists):
    run_cli("subscribers", "add", "a@x.nl", "--name", "Anna", "--attr", "sector=ICT",
            "--attr", "oud=1")
    result = run_cli(
        "subscribers", "edit", "a@x.nl", "--name", "Anna de Vries", "--region", "west",
        "--language", "en", "--attr", "team=Inkoop", "--unset-attr", "oud",
        "--list", "nieuwsbrief",
    )
    assert "Updated a@x.nl." in result.output
    record = show(run_cli, "a@x.nl")
    assert (record["name"], record["region"], record["language"]) == (
        "Anna de Vries", "West", "en")
    assert record["attributes"] == {"sector": "ICT", "team": "Inkoop"}
    assert record["lists"] == ["nieuwsbrief"]

    run_cli("subscribers", "edit", "a@x.nl", "--email", "anna@x.nl")
    assert show(run_cli, "anna@x.nl")["name"] == "Anna de Vries"
    run_cli("subscribers", "add", "b@x.nl")
    one_line_error(run_cli("subscribers", "edit", "b@x.nl", "--email", "ANNA@x.nl", ok=False),
                   "exists already")
    one_line_error(run_cli("subscribers", "edit", "b@x.nl", "--region", "Atlantis", ok=False),
                   "unknown region")


def test_unsubscribe_one_list_then_all(run_cli, lists):
    run_cli("subscribers", "add", "a@x.nl", "--list", "nieuwsbrief", "--list", "regio-noord")
    result = run_cli("subscribers", "unsubscribe", "a@x.nl", "--list", "regio-noord")
    assert "from list regio-noord" in result.output
    record = show(run_cli, "a@x.nl")
    assert record["lists"] == ["nieuwsbrief"]
    assert record["status"] == "active"
    again = run_cli("subscribers", "unsubscribe", "a@x.nl", "--list", "regio-noord")
    assert "was not on list regio-noord; nothing changed" in again.output
    run_cli("subscribers", "unsubscribe", "a@x.nl")
    twice = run_cli("subscribers", "unsubscribe", "a@x.nl")  # twice changes nothing
    assert "already unsubscribed; nothing changed" in twice.output
    record = show(run_cli, "a@x.nl")
    assert (record["lists"], record["status"]) == ([], "unsubscribed")
    actions = [e["action"] for e in record["consent_history"]]
    assert actions.count("unsubscribe-all") == 1 and "unsubscribe" in actions
    one_line_error(run_cli("subscribers", "unsubscribe", "a@x.nl", "--list", "x", ok=False),
                   "no list 'x'")


def test_block_suppresses_and_edit_status_reactivates(run_cli):
    run_cli("subscribers", "add", "a@x.nl")
    assert "suppression list" in run_cli("subscribers", "block", "a@x.nl", "--note",
                                         "asked by phone").output
    record = show(run_cli, "a@x.nl")
    assert (record["status"], record["suppressed"]) == ("blocked", True)
    run_cli("suppress", "rm", "a@x.nl")
    run_cli("subscribers", "edit", "a@x.nl", "--status", "active")
    record = show(run_cli, "a@x.nl")
    assert (record["status"], record["suppressed"]) == ("active", False)


def test_erase_removes_the_person_and_clears_deliveries(
    run_cli, lists, sessions: sessionmaker[Session]
):
    run_cli("subscribers", "add", "anna@x.nl", "--name", "Anna", "--list", "nieuwsbrief")
    run_cli("subscribers", "add", "bert@x.nl", "--list", "nieuwsbrief")
    with session_scope(sessions) as session:
        campaign = Campaign(subject="Nieuwsbrief juni")
        session.add(campaign)
        session.flush()
        ids = {e: i for e, i in session.execute(select(Subscriber.email, Subscriber.id))}
        for email, sid in ids.items():
            session.add(Delivery(campaign_id=campaign.id, subscriber_id=sid, email=email,
                                 status="sent"))
        later = Campaign(subject="Nieuwsbrief juli")
        session.add(later)
        session.flush()
        session.add(Delivery(campaign_id=later.id, subscriber_id=ids["anna@x.nl"],
                             email="anna@x.nl", status="queued"))
    record = show(run_cli, "anna@x.nl")
    assert [(d["subject"], d["status"]) for d in record["deliveries"]] == [
        ("Nieuwsbrief juni", "sent"), ("Nieuwsbrief juli", "queued")]

    result = run_cli("subscribers", "erase", "anna@x.nl", input="n\n", ok=False)
    assert result.exit_code == 1 and "Aborted" in result.output
    assert show(run_cli, "anna@x.nl")["name"] == "Anna"

    result = run_cli("subscribers", "erase", "ANNA@x.nl", "--yes")
    assert "Erased" in result.output
    one_line_error(run_cli("subscribers", "show", "anna@x.nl", ok=False), "no subscriber")
    with session_scope(sessions) as session:
        deliveries = session.execute(
            select(Delivery.email, Delivery.subscriber_id, Delivery.status).order_by(Delivery.id)
        ).all()
        assert sorted(d.email for d in deliveries) == ["", "", "bert@x.nl"]
        erased = [(d.subscriber_id, d.status) for d in deliveries if d.email == ""]
        # Sent mail keeps its statistics; mail not yet sent is never sent.
        assert erased == [(None, "sent"), (None, "skipped")]
        suppression = session.scalars(select(Suppression)).one()
        assert suppression.email_hash == email_hash("anna@x.nl")
        assert (suppression.email, suppression.email_key, suppression.reason) == (
            None, None, "erased")
        assert session.scalars(select(ConsentEvent.detail)).all() != []  # Bert's remain
        remaining = session.scalars(select(Subscriber.email)).all()
        assert remaining == ["bert@x.nl"]

    one_line_error(run_cli("subscribers", "add", "Anna@X.nl", ok=False), "suppression list")
