"""The CLI as a new user finds it: times around the clock changes, impossible offsets, unknown
statuses, a CSV with a quote left open, and progress on a long import (both backends)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from delivery_support import content_file, make_audience

from mailer.app import build_app
from mailer.campaigns.models import CAMPAIGN_STATUSES
from mailer.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def campaign(run_cli, tmp_path: Path) -> str:
    app = build_app(load_settings())
    try:
        make_audience(app.sessions, 2)
    finally:
        app.close()
    run_cli("campaigns", "create", "--content", str(content_file(tmp_path)),
            "--list", "nieuwsbrief")
    return "1"


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def _status(run_cli, campaign: str) -> dict:
    return json.loads(run_cli("campaigns", "status", campaign, "--json").output)


def test_schedule_in_the_spring_gap_is_refused(run_cli, campaign):
    # 28 March 2027, Amsterdam: 02:00 becomes 03:00, so 02:30 never happens.
    error = _one_line_error(
        run_cli("campaigns", "schedule", campaign, "--at", "2027-03-28 02:30", ok=False)
    )
    assert "does not exist in Europe/Amsterdam" in error
    assert _status(run_cli, campaign)["status"] == "draft"  # not moved to 03:30 silently


def test_schedule_in_the_repeated_autumn_hour_asks_which(run_cli, campaign):
    # 31 October 2027: 02:00-03:00 happens twice; the error names both answers.
    error = _one_line_error(
        run_cli("campaigns", "schedule", campaign, "--at", "2027-10-31 02:30", ok=False)
    )
    assert "happens twice" in error
    assert '"2027-10-31 02:30+02:00" (the first)' in error
    assert '"2027-10-31 02:30+01:00" (the second)' in error
    assert _status(run_cli, campaign)["status"] == "draft"
    run_cli("campaigns", "schedule", campaign, "--at", "2027-10-31 02:30+01:00")
    assert _status(run_cli, campaign)["scheduled_at"].startswith("2027-10-31T01:30")


@pytest.mark.parametrize("offset", ["+25:00", "-13:00", "+02:75"])
def test_an_impossible_offset_is_a_one_line_error(run_cli, campaign, offset):
    error = _one_line_error(
        run_cli("campaigns", "schedule", campaign, "--at", f"2027-04-10 09:00{offset}", ok=False)
    )
    assert f"{offset} is not a UTC offset" in error


def test_ls_with_an_unknown_status_lists_the_valid_ones(run_cli, campaign):
    result = run_cli("campaigns", "ls", "--status", "bogus", ok=False)
    assert result.exit_code == 2
    assert "'bogus' is not one of" in result.output
    for status in CAMPAIGN_STATUSES:
        assert repr(status) in result.output
    listing = json.loads(run_cli("campaigns", "ls", "--status", "draft", "--json").output)
    assert [c["id"] for c in listing] == [1]


def test_csv_with_a_quote_left_open_is_refused_whole(run_cli, tmp_path: Path):
    path = tmp_path / "people.csv"
    path.write_text(
        "e-mail;naam;gemeente\n"
        "anna@assen.nl;Anna;Assen\n"
        'bram@emmen.nl;"Bram;Emmen\n'  # line 3: the quote is never closed
        "cor@zwolle.nl;Cor;Zwolle\n"
        "dirk@ede.nl;Dirk;Ede\n",
        encoding="utf-8",
    )
    error = _one_line_error(run_cli("subscribers", "import", str(path), ok=False))
    assert error.startswith(f"Error: {path}: line 3: a quote")
    assert "nothing was imported" in error
    assert json.loads(run_cli("subscribers", "ls", "--json").output) == []
    # The same quote closed later on, swallowing a row, is refused as well.
    path.write_text(
        'e-mail;naam\nanna@assen.nl;"Anna\nbram@emmen.nl;Bram\ncor@zwolle.nl;Cor"\n',
        encoding="utf-8",
    )
    error = _one_line_error(run_cli("subscribers", "import", str(path), ok=False))
    assert ": line 2: a quote" in error
    assert json.loads(run_cli("subscribers", "ls", "--json").output) == []


def test_a_real_multi_line_cell_is_still_taken(run_cli, tmp_path: Path):
    path = tmp_path / "people.csv"
    path.write_text('e-mail;naam;adres\nanna@assen.nl;Anna;"Brink 1\nAssen"\n', encoding="utf-8")
    assert "1 added" in run_cli("subscribers", "import", str(path)).output


def _big_file(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "big.csv"
    lines = ["e-mail;naam"] + [f"p{i}@example.nl;Persoon {i}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_shows_progress_on_a_terminal(env, tmp_path: Path):
    path = _big_file(tmp_path, 5000)
    controller, terminal = pty.openpty()
    child_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailer", "subscribers", "import", str(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, env=child_env,
    )
    os.close(terminal)
    out = proc.stdout.read() if proc.stdout else b""
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert proc.wait(60) == 0
    assert b"5000 added" in out
    assert b"Importing" in shown and b"5001/5001" in shown


def test_import_is_quiet_when_not_on_a_terminal(run_cli, tmp_path: Path):
    result = run_cli("subscribers", "import", str(_big_file(tmp_path, 2500)))
    assert result.stderr == ""
    assert result.stdout.strip() == (
        f"Imported {tmp_path / 'big.csv'}: 2500 added, 0 updated, 0 unchanged, 0 rejected."
    )


@pytest.fixture(autouse=True)
def _one_person_may_schedule(config_file: Path) -> None:
    """These tests are about times and faults, not the four-eyes rule (tested on its own)."""
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace("require_approval = true", "require_approval = false"),
                           encoding="utf-8")
