"""`mailer lists create|ls|show` on SQLite and PostgreSQL."""

from __future__ import annotations

import json


def test_create_ls_show(run_cli):
    result = run_cli("lists", "create", "nieuwsbrief", "--title", "GT Nieuwsbrief",
                     "--description", "Maandelijks nieuws")
    assert "Created list nieuwsbrief (single opt-in, not public)." in result.output
    run_cli("lists", "create", "regio-noord", "--title", "Regio Noord", "--double-opt-in")
    run_cli("subscribers", "add", "a@x.nl", "--list", "nieuwsbrief", "--list", "regio-noord")
    run_cli("subscribers", "add", "b@x.nl", "--list", "nieuwsbrief")
    run_cli("subscribers", "unsubscribe", "b@x.nl", "--list", "nieuwsbrief")

    rows = json.loads(run_cli("lists", "ls", "--json").output)
    assert [(r["slug"], r["opt_in"], r["active"]) for r in rows] == [
        ("nieuwsbrief", "single", 1), ("regio-noord", "double", 1)]
    assert "Regio Noord" in run_cli("lists", "ls").output

    shown = json.loads(run_cli("lists", "show", "nieuwsbrief", "--json").output)
    assert (shown["title"], shown["description"], shown["active"]) == (
        "GT Nieuwsbrief", "Maandelijks nieuws", 1)
    assert "Maandelijks nieuws" in run_cli("lists", "show", "nieuwsbrief").output


def test_user_errors(run_cli):
    run_cli("lists", "create", "nieuwsbrief", "--title", "N")
    for args, needle in (
        (("create", "nieuwsbrief", "--title", "Again"), "exists already"),
        (("create", "Met Spaties", "--title", "X"), "invalid list slug"),
        (("create", "leeg", "--title", "  "), "needs a title"),
        (("show", "onbekend"), "no list 'onbekend'"),
    ):
        result = run_cli("lists", *args, ok=False)
        assert result.exit_code == 1, result.output
        assert needle in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
