"""`mailer suppress add|ls|rm` and what suppression means for subscribers, on both backends."""

from __future__ import annotations

import json

from subscribers.service import email_hash


def listed(run_cli, *args: str) -> list[dict]:
    return json.loads(run_cli("suppress", "ls", *args, "--json").output)


def test_add_ls_rm(run_cli):
    result = run_cli("suppress", "add", "Secretariaat@Voorbeeld.nl", "post@voorbeeld.nl",
                     "--note", "shared mailbox")
    assert "Secretariaat@Voorbeeld.nl: suppressed." in result.output
    again = run_cli("suppress", "add", "secretariaat@voorbeeld.nl")
    assert "was already suppressed" in again.output
    rows = listed(run_cli)
    assert [(r["email"], r["reason"], r["note"]) for r in rows] == [
        ("Secretariaat@voorbeeld.nl", "manual", "shared mailbox"),
        ("post@voorbeeld.nl", "manual", "shared mailbox"),
    ]
    assert rows[0]["hash"] == email_hash("secretariaat@voorbeeld.nl")
    table = run_cli("suppress", "ls").output
    assert "post@voorbeeld.nl" in table and "manual" in table

    assert "no longer suppressed" in run_cli("suppress", "rm", "SECRETARIAAT@voorbeeld.nl").output
    assert [r["email"] for r in listed(run_cli)] == ["post@voorbeeld.nl"]


def test_reasons_and_erased_show_as_hash(run_cli):
    run_cli("suppress", "add", "klacht@x.nl", "--reason", "complained")
    run_cli("subscribers", "add", "weg@x.nl")
    run_cli("subscribers", "erase", "weg@x.nl", "--yes")
    assert [r["email"] for r in listed(run_cli, "--reason", "complained")] == ["klacht@x.nl"]
    erased = listed(run_cli, "--reason", "erased")
    assert erased[0]["email"] is None and erased[0]["hash"] == email_hash("weg@x.nl")
    assert "(erased)" in run_cli("suppress", "ls").output
    # An erased person can be taken off the list by their address (the hash matches).
    run_cli("suppress", "rm", "WEG@x.nl")
    assert listed(run_cli, "--reason", "erased") == []


def test_suppressed_address_cannot_be_added(run_cli):
    run_cli("suppress", "add", "nee@x.nl")
    result = run_cli("subscribers", "add", "Nee@X.nl", ok=False)
    assert result.exit_code == 1 and "suppression list" in result.output


def test_user_errors(run_cli):
    for args, needle in (
        (("rm", "nobody@x.nl"), "not on the suppression list"),
        (("add", "geen-adres"), "invalid e-mail address"),
    ):
        result = run_cli("suppress", *args, ok=False)
        assert result.exit_code == 1 and needle in result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
