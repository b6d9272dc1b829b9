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


def test_changes_are_in_the_audit_trail_without_the_address(run_cli):
    # The use case the CLI calls audits as the OS user; the trail names the hash, not the
    # address, so it never brings an erased person's address back.
    run_cli("suppress", "add", "Post@Voorbeeld.nl", "--note", "on request")
    run_cli("suppress", "add", "post@voorbeeld.nl")  # already there: nothing to record
    run_cli("suppress", "rm", "post@voorbeeld.nl")
    trail = json.loads(run_cli("audit", "ls", "--action", "suppression.", "--json").output)
    key = email_hash("post@voorbeeld.nl")[:16]
    assert sorted((e["action"], e["object_type"], e["object_id"]) for e in trail) == [
        ("suppression.add", "suppression", key), ("suppression.remove", "suppression", key)]
    assert all(e["actor"].startswith("os:") for e in trail)
    assert "voorbeeld" not in json.dumps(trail)
