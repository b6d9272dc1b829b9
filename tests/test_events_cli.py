"""`mailer events` commands on both backends: create, ls, show, edit, rsvp, rsvps, errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from conftest import Cli


def _create(run_cli: Cli, *extra: str) -> str:
    result = run_cli(
        "events", "create", "--title", "GT Connect regio Noord", "--region", "noord",
        "--starts", "2099-04-14 13:30", "--ends", "2099-04-14 16:00",
        "--venue", "Provinciehuis", "--address", "Martinikerkhof 12, Groningen", *extra,
    )
    assert "Created event " in result.stderr
    return result.stdout.strip()


def test_create_show_ls(run_cli: Cli, tmp_path: Path) -> None:
    programme = tmp_path / "programma.txt"
    programme.write_text("13.30 Inloop\n14.00 Stand van zaken GT Connect\n", encoding="utf-8")
    eid = _create(run_cli, "--capacity", "2", "--deadline", "2099-04-07 17:00",
                  "--description", str(programme))
    assert eid == "1"
    out = run_cli("events", "show", eid).output
    assert "when:       dinsdag 14 april, 13.30–16.00 uur" in out
    assert "capacity:   2" in out and "seats_left: 2" in out
    assert "deadline:   2099-04-07 17:00" in out
    data = json.loads(run_cli("events", "show", eid, "--json").output)
    assert data["region"] == "Noord" and data["starts"] == "2099-04-14 13:30"
    assert (data["yes"], data["no"], data["maybe"], data["waiting"]) == (0, 0, 0, 0)
    listing = json.loads(run_cli("events", "ls", "--json").output)
    assert [e["id"] for e in listing] == [1]
    assert "GT Connect regio Noord" in run_cli("events", "ls").output


def test_rsvp_and_export(run_cli: Cli) -> None:
    for i, (name, org) in enumerate([("Anna de Vries", "Gemeente Assen"),
                                     ("Bram Bakker", "Gemeente Emmen"),
                                     ("Cor Smit", "Gemeente Hoogeveen")]):
        run_cli("subscribers", "add", f"p{i}@gemeente.nl", "--name", name,
                "--organisation", org, "--region", "Noord")
    eid = _create(run_cli, "--capacity", "1")
    assert run_cli("events", "rsvp", eid, "p0@gemeente.nl", "yes").output.strip() == (
        "p0@gemeente.nl: yes."
    )
    out = run_cli("events", "rsvp", eid, "p1@gemeente.nl", "yes").output
    assert "waiting list (number 1)" in out
    run_cli("events", "rsvp", eid, "p2@gemeente.nl", "no")
    data = json.loads(run_cli("events", "show", eid, "--json").output)
    assert (data["yes"], data["no"], data["maybe"], data["waiting"]) == (1, 1, 0, 1)

    rows = list(csv.DictReader(io.StringIO(run_cli("events", "rsvps", eid, "--format",
                                                   "csv").output)))
    assert [(r["name"], r["organisation"], r["answer"]) for r in rows] == [
        ("Anna de Vries", "Gemeente Assen", "yes"),
        ("Bram Bakker", "Gemeente Emmen", "waiting"),
        ("Cor Smit", "Gemeente Hoogeveen", "no"),
    ]
    assert set(rows[0]) == {"name", "organisation", "region", "answer", "when", "email"}
    as_json = json.loads(run_cli("events", "rsvps", eid, "--format", "json", "--answer",
                                 "yes").output)
    assert [r["name"] for r in as_json] == ["Anna de Vries"]

    # Anna gives up her seat: Bram gets it.
    out = run_cli("events", "rsvp", eid, "p0@gemeente.nl", "no").output
    assert "1 from the waiting list got the seat." in out
    data = json.loads(run_cli("events", "show", eid, "--json").output)
    assert (data["yes"], data["no"], data["waiting"]) == (1, 2, 0)


def test_edit_without_time_change_and_errors(run_cli: Cli) -> None:
    eid = _create(run_cli)
    out = run_cli("events", "edit", eid, "--title", "GT Connect Noord").output
    assert out.startswith(f"Changed event {eid} (title)")
    assert "campaign" not in out
    bad = run_cli("events", "create", "--title", "X", "--region", "Noord", "--starts",
                  "2099-04-14 16:00", "--ends", "2099-04-14 13:00", ok=False)
    assert bad.exit_code == 1
    assert bad.output.strip() == "Error: ends: the meeting must end after it starts"
    bad = run_cli("events", "create", "--title", "X", "--region", "Noord", "--starts",
                  "14-04-2099", "--ends", "2099-04-14 13:00", ok=False)
    assert "Error: --starts: '14-04-2099' is not a time like 2027-04-10 13:30" in bad.output
    missing = run_cli("events", "show", "42", ok=False)
    assert missing.output.strip() == "Error: event 42: no such event"
    nothing = run_cli("events", "edit", eid, ok=False)
    assert "nothing to change" in nothing.output


def test_create_in_the_repeated_autumn_hour_asks_which(run_cli: Cli) -> None:
    # 25 October 2099, Amsterdam: 02:00-03:00 happens twice. As `campaigns schedule --at`: the
    # error is one line naming both choices, nothing is created, and an offset says which.
    times = ("--starts", "2099-10-25 02:30", "--ends", "2099-10-25 04:00")
    asked = run_cli("events", "create", "--title", "Nachtoverleg", "--region", "Noord", *times,
                    ok=False)
    assert asked.exit_code == 1
    assert asked.output.strip() == (
        'Error: --starts: 2099-10-25 02:30 happens twice in Europe/Amsterdam (the clocks go back'
        ' that night): say which, "2099-10-25 02:30+02:00" (the first) or'
        ' "2099-10-25 02:30+01:00" (the second)'
    )
    assert json.loads(run_cli("events", "ls", "--all", "--json").output) == []
    eid = run_cli("events", "create", "--title", "Nachtoverleg", "--region", "Noord",
                  "--starts", "2099-10-25 02:30+01:00", "--ends", "2099-10-25 04:00"
                  ).stdout.strip()
    data = json.loads(run_cli("events", "show", eid, "--json").output)
    # The second 02:30 (winter time, UTC+1) to 04:00: one and a half hours.
    assert data["starts"] == "2099-10-25 02:30" and data["ends"] == "2099-10-25 04:00"
    edited = run_cli("events", "edit", eid, "--starts", "2099-10-25 02:15", ok=False)
    assert "happens twice" in edited.output and edited.exit_code == 1


def test_every_command_has_an_example(run_cli: Cli) -> None:
    for command in ("create", "ls", "show", "edit", "cancel", "invite", "rsvps", "rsvp",
                    "send-due", "replies"):
        assert "Example:" in run_cli("events", command, "--help").output


def test_invite_schedule_and_cancel(run_cli: Cli) -> None:
    run_cli("lists", "create", "regio-noord", "--title", "Regio Noord")
    run_cli("subscribers", "add", "anna@assen.nl", "--region", "Noord", "--list", "regio-noord")
    run_cli("subscribers", "add", "bram@emmen.nl", "--region", "Noord")
    run_cli("subscribers", "add", "olga@zwolle.nl", "--region", "Oost")
    eid = _create(run_cli)
    out = run_cli("events", "invite", eid).output
    assert out.strip() == "Invitation campaign 1 started: 2 recipient(s) queued."
    out = run_cli("events", "invite", eid, "--list", "regio-noord", "--at",
                  "2099-03-01 09:00").output
    assert out.strip() == "Invitation campaign 2 scheduled for 2099-03-01 09:00."
    out = run_cli("events", "invite", eid, "--region", "Oost").output
    assert "1 recipient(s) queued" in out
    bad = run_cli("events", "invite", eid, "--region", "Atlantis", ok=False)
    assert bad.output.strip().startswith("Error: region: unknown region 'Atlantis'")

    shown = json.loads(run_cli("events", "show", eid, "--json").output)
    assert [(c["kind"], c["status"]) for c in shown["campaigns"]] == [
        ("invitation", "running"), ("invitation", "scheduled"), ("invitation", "running"),
    ]
    out = run_cli("events", "cancel", eid, "--yes").output
    assert "Cancelled event 1" in out and "as campaign 4" in out
    shown = json.loads(run_cli("events", "show", eid, "--json").output)
    assert shown["status"] == "cancelled" and shown["sequence"] == 1
    # Invitations not yet sent are stopped: a cancelled meeting is not invited to.
    assert [(c["kind"], c["status"]) for c in shown["campaigns"]] == [
        ("invitation", "cancelled"), ("invitation", "cancelled"), ("invitation", "cancelled"),
        ("cancellation", "finished"),
    ]
    again = run_cli("events", "cancel", eid, "--yes", ok=False)
    assert again.output.strip() == f"Error: event {eid}: already cancelled"
    refused = run_cli("events", "invite", eid, ok=False)
    assert "cancelled meetings cannot be invited to" in refused.output


def test_subjects_are_shown_as_people_received_them(run_cli: Cli) -> None:
    """Meeting mail's subject is a per-person template; tables show the rendered text."""
    run_cli("subscribers", "add", "anna@assen.nl", "--region", "Noord")
    eid = _create(run_cli)
    run_cli("events", "invite", eid)
    expected = ("Uitnodiging: GT Connect regio Noord, dinsdag 14 april / "
                "Invitation: GT Connect regio Noord, Tuesday 14 April")
    for out in (
        run_cli("campaigns", "status", "1").output,
        run_cli("bounces", "stats", "--campaign", "1", "--json").output,
        run_cli("subscribers", "show", "anna@assen.nl", "--json").output,
    ):
        assert "{%" not in out and expected in out
    (listed,) = json.loads(run_cli("campaigns", "ls", "--json").output)
    assert listed["subject"] == expected and "{%" in listed["subject_template"]
    table = run_cli("campaigns", "ls").output
    assert "Uitnodiging: GT Connect regio Noord" in table and "{%" not in table
