"""`mailer campaigns ...` as a user types it, on both backends, with a real loopback relay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from delivery_support import content_file, make_audience, set_config
from smtp_support import SmtpServer

from mailer.app import build_app
from mailer.cli import campaigns as campaigns_cli
from mailer.cli import run as run_cli_module
from mailer.settings import load_settings


@pytest.fixture
def relay(env, config_file: Path) -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    set_config(config_file, smtp__port=server.port)
    yield server
    server.stop()


@pytest.fixture
def audience(env) -> list[str]:
    app = build_app(load_settings())
    try:
        return make_audience(app.sessions, 5)
    finally:
        app.close()


def test_create_preview_send_and_status(run_cli, relay, audience, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch):
    content = content_file(tmp_path)
    monkeypatch.setenv("LOGNAME", "redacteur")  # the OS user the CLI acts as
    created = run_cli("campaigns", "create", "--content", str(content), "--list", "nieuwsbrief",
                      "--region", "Noord", "--region", "oost")
    campaign_id = created.stdout.strip().splitlines()[0]
    assert campaign_id == "1"

    html = tmp_path / "preview.html"
    run_cli("campaigns", "preview", "1", "--subscriber", audience[0], "-o", str(html))
    assert "Persoon 0" in html.read_text(encoding="utf-8")
    eml = tmp_path / "preview.eml"
    run_cli("campaigns", "preview", "1", "-o", str(eml))
    assert eml.read_bytes().startswith(b"Date:") or b"Subject:" in eml.read_bytes()
    shown = run_cli("campaigns", "preview", "1")
    assert "Subject: Nieuws van GT" in shown.output

    run_cli("campaigns", "test", "1", "--to", "redactie@gt.example.nl",
            "--subscriber", audience[0])
    assert relay.rcpts() == {"redactie@gt.example.nl": 1}

    # Four-eyes: not sent before someone other than its author approved it.
    refused = run_cli("campaigns", "send", "1", ok=False)
    assert refused.exit_code == 1 and "needs approval by someone else" in refused.output
    assert "someone else must approve" in run_cli("campaigns", "approve", "1", ok=False).output
    monkeypatch.setenv("LOGNAME", "eindredacteur")
    assert "approved by os:eindredacteur" in run_cli("campaigns", "approve", "1").output
    sent = run_cli("campaigns", "send", "1", "--wait")
    assert "started by os:eindredacteur: 2 recipients" in sent.output  # Noord and Oost of the five
    info = json.loads(run_cli("campaigns", "status", "1", "--json").output)
    assert info["status"] == "finished" and info["sent"] == 2 and info["recipients"] == 2
    listing = json.loads(run_cli("campaigns", "ls", "--json").output)
    assert listing[0]["id"] == 1 and listing[0]["sent"] == 2


def test_schedule_pause_resume_cancel_from_the_cli(run_cli, relay, audience, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOGNAME", "redacteur")
    run_cli("campaigns", "create", "--content", str(content_file(tmp_path)), "--list",
            "nieuwsbrief")
    monkeypatch.setenv("LOGNAME", "eindredacteur")
    run_cli("campaigns", "approve", "1")
    out = run_cli("campaigns", "schedule", "1", "--at", "2099-05-01 09:00").output
    assert "2099-05-01 09:00" in out and "Europe/Amsterdam" in out
    assert "paused" in run_cli("campaigns", "pause", "1").output
    assert "scheduled again" in run_cli("campaigns", "resume", "1").output
    assert "cancelled" in run_cli("campaigns", "cancel", "1").output
    status = run_cli("campaigns", "status", "1").output
    assert "cancelled" in status


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["campaigns", "status", "99"], "no campaign 99"),
        (["campaigns", "schedule", "1", "--at", "2001-01-01 09:00"], "in the past"),
        (["campaigns", "schedule", "1", "--at", "volgende week"], "YYYY-MM-DD HH:MM"),
        (["campaigns", "create", "--content", "nope.md", "--list", "nieuwsbrief"], "not found"),
        (["campaigns", "create", "--content", "CONTENT", "--list", "nergens"], "nergens"),
        (["campaigns", "preview", "1", "-o", "x.pdf"], ".html or .eml"),
    ],
)
def test_errors_are_one_line(run_cli, audience, tmp_path: Path, args, message):
    content = content_file(tmp_path)
    run_cli("campaigns", "create", "--content", str(content), "--list", "nieuwsbrief")
    args = [str(content) if a == "CONTENT" else a for a in args]
    result = run_cli(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def _commands(command: click.Command) -> Iterator[click.Command]:
    yield command
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _commands(sub)


def test_every_command_has_an_example():
    for top in [*campaigns_cli.commands, *run_cli_module.commands]:
        for command in _commands(top):
            assert "Example:" in (command.help or ""), command.name


def test_subject_flag_and_broken_body_name_the_file(run_cli, audience, tmp_path: Path):
    plain = tmp_path / "zonder-kop.md"
    plain.write_text("Beste {{ subscriber.name }},\n\nKort bericht.\n", encoding="utf-8")
    created = run_cli("campaigns", "create", "--content", str(plain), "--list", "nieuwsbrief",
                      "--subject", "Kort bericht")
    assert created.stdout.strip() == "1"

    broken = tmp_path / "kapot.md"
    broken.write_text("---\nsubject: Test\n---\nBeste {% if %}\n", encoding="utf-8")
    result = run_cli("campaigns", "create", "--content", str(broken), "--list", "nieuwsbrief",
                     ok=False)
    assert result.exit_code == 1
    assert "kapot.md (body after the front matter), line 1:" in result.output
    assert "campaign 2" not in result.output  # nothing was stored, so no campaign to name
    assert len(result.output.strip().splitlines()) == 1


def test_campaigns_test_sends_working_links_to_several_addresses(
    run_cli, relay, audience, tmp_path: Path
):
    import email
    import email.policy
    import re

    from starlette.testclient import TestClient
    from web_support import BASE

    from mailer.web.app import create_web_app

    run_cli("campaigns", "create", "--content", str(content_file(tmp_path)), "--list",
            "nieuwsbrief")
    # A bad address anywhere: one line, nothing sent.
    bad = run_cli("campaigns", "test", "1", "--to", audience[0], "--to", "nobody@", ok=False)
    assert bad.exit_code == 1 and bad.output.count("\n") == 1
    assert "--to: not a usable e-mail address: 'nobody@'" in bad.output
    stranger = run_cli("campaigns", "test", "1", "--to", "redactie@gt.example.nl", ok=False)
    assert "not a subscriber" in stranger.output and stranger.exit_code == 1
    assert relay.received == []

    out = run_cli("campaigns", "test", "1", "--to", audience[1], "--to", audience[2]).output
    assert out.count("Sent a test of campaign 1") == 2
    assert relay.rcpts() == {audience[1]: 1, audience[2]: 1}
    # Each test's links are its person's, and their pages answer.
    app = build_app(load_settings())
    try:
        with TestClient(create_web_app(app), base_url=BASE) as client:
            for received in relay.received:
                msg = email.message_from_bytes(received.data, policy=email.policy.default)
                text = msg.get_body(("plain",)).get_content()
                links = re.findall(r"https?://\S+/(?:u|p|v)/[A-Za-z0-9._-]+", text)
                assert links, text
                for link in links:
                    page = client.get(link.replace(app.settings.web.base_url, ""))
                    assert page.status_code == 200, (link, page.status_code)
    finally:
        app.close()
