"""Finding 8: control characters. ESC, BEL and NUL typed into forms, files, bounce mail and the
command line must not reach the administrator's terminal (`subscribers show`, `bounces show`),
rich markup in data must print as text, and a NUL in a form field or URL is a 400 (not a 500 on
PostgreSQL). Replayed through the real CLI and the real web app, on both databases."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from bounces_support import ANNA, sample, sent_delivery, verp_for
from web_support import csrf_token, setup_people

from mailer.database.connect import session_scope
from mailer.kernel.links import Links
from subscribers import service

# Retitles the terminal window, clears the screen, rings the bell; then a NUL and a C1 CSI.
NASTY = "Anna\x1b]0;pwned\x07\x1b[2J\x00 de\x9b31m Vries"
CLEAN = "Anna]0;pwned[2J de31m Vries"
ESCAPES = ("\x1b", "\x07", "\x00", "\x9b")


def no_controls(text: str) -> None:
    for char in ESCAPES:
        assert char not in text, repr(text)


def test_cli_input_loses_controls_and_show_prints_none(run_cli):
    run_cli("subscribers", "add", "anna@gemeente.example.nl", "--name", NASTY,
            "--organisation", "[bold red]Gemeente[/] \x1b[5mAssen")
    shown = run_cli("subscribers", "show", "anna@gemeente.example.nl")
    no_controls(shown.output)
    assert f"name:         {CLEAN}" in shown.output
    data = json.loads(run_cli("subscribers", "show", "anna@gemeente.example.nl", "--json").output)
    assert data["name"] == CLEAN
    # Markup in data is printed as it was typed, not interpreted.
    listing = run_cli("subscribers", "ls")
    assert "[bold red]Gemeente[/]" in listing.output
    no_controls(listing.output)


def test_import_loses_controls(run_cli, tmp_path: Path):
    run_cli("lists", "create", "nieuwsbrief", "--title", "Nieuwsbrief")
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["e-mail", "naam", "kleur"])
        writer.writerow(["anna@gemeente.example.nl", NASTY, "rood\x1b[8m"])
    run_cli("subscribers", "import", str(source), "--list", "nieuwsbrief")
    data = json.loads(run_cli("subscribers", "show", "anna@gemeente.example.nl", "--json").output)
    assert data["name"] == CLEAN
    assert data["attributes"]["kleur"] == "rood[8m"
    no_controls(run_cli("subscribers", "show", "anna@gemeente.example.nl").output)


def test_bounce_fields_lose_controls(run_cli, app):
    with session_scope(app.sessions) as session:
        delivery = sent_delivery(session)
        verp = verp_for(app.signer, delivery, app.settings.sender.bounce_domain)
    raw = sample("handmade_hard_511.eml", verp)
    raw = raw.replace(b"Subject: Undelivered Mail Returned to Sender",
                      b"Subject: Undelivered\x1b]0;pwned\x07\x1b[2J Mail")
    raw = raw.replace(b"Recipient address rejected", b"Recipient\x1b[2J\x07 address rejected")
    run_cli("bounces", "ingest", "-", "--envelope-to", verp, input=raw.decode("latin-1"))
    listed = json.loads(run_cli("bounces", "ls", "--json").output)
    assert listed, "the bounce was not recorded"
    shown = run_cli("bounces", "show", str(listed[0]["id"]))
    no_controls(shown.output)
    assert "Undelivered]0;pwned[2J Mail" in shown.output
    assert ANNA in shown.output


@pytest.fixture
def people(app) -> dict[str, int]:
    return setup_people(app)


def test_a_nul_in_a_form_field_is_a_400(client, app, people):
    url = Links(app.settings.web.base_url, app.signer).preferences(people["anna"])
    url = url.removeprefix(app.settings.web.base_url)
    page = client.get(url)
    before = service.subscriber_record
    answer = client.post(url, data={"csrf": csrf_token(page.text), "action": "save",
                                    "language": "en\x00"})
    assert answer.status_code == 400
    assert answer.headers["x-frame-options"] == "DENY"
    with session_scope(app.sessions) as session:
        assert before(session, "anna@gemeente.example.nl")["language"] == "nl"  # nothing changed
    # The one-click endpoint reads its form the same way.
    unsubscribe = Links(app.settings.web.base_url, app.signer).unsubscribe(people["anna"])
    answer = client.post(unsubscribe.removeprefix(app.settings.web.base_url),
                         data={"List-Unsubscribe": "One-Click\x00"})
    assert answer.status_code == 400


@pytest.mark.parametrize("url", ["/u/abc%00def", "/p/x%00", "/subscribe/nieuwsbrief?lang=nl%00",
                                 "/v/%00"])
def test_a_nul_in_a_url_is_a_400(client, people, url):
    answer = client.get(url)
    assert answer.status_code == 400
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_event_fields_from_the_cli_lose_controls(run_cli):
    eid = run_cli(
        "events", "create", "--title", "Regio\x1b]0;pwned\x07 Noord", "--region", "noord",
        "--starts", "2099-04-14 13:30", "--ends", "2099-04-14 16:00",
        "--venue", "Provinciehuis\x1b[2J", "--address", "Martinikerkhof 12\x00, Groningen",
    ).stdout.strip()
    shown = run_cli("events", "show", eid)
    no_controls(shown.output)
    assert "Regio]0;pwned Noord" in shown.output and "Provinciehuis[2J" in shown.output


# -- what staff type: lists, campaigns, console users (CLI and console alike) --------------------

def test_staff_typed_texts_lose_controls_in_the_cli(run_cli, tmp_path: Path, app):
    run_cli("lists", "create", "nieuws", "--title", NASTY,
            "--description", "Eerste regel\x1b[2J\nTweede\tregel\x07")
    shown = run_cli("lists", "show", "nieuws")
    no_controls(shown.output)
    data = json.loads(run_cli("lists", "show", "nieuws", "--json").output)
    assert (data["title"], data["description"]) == (CLEAN, "Eerste regel[2J\nTweede\tregel")
    run_cli("lists", "edit", "nieuws", "--title", "Nieuws\x9b31m\x00")
    assert json.loads(run_cli("lists", "show", "nieuws", "--json").output)["title"] == \
        "Nieuws31m"
    no_controls(run_cli("lists", "ls").output)

    content = tmp_path / "nieuws.md"
    # YAML's own escapes (\\e ESC, \\a BEL) in the front matter; raw ones in the body.
    content.write_text('---\nsubject: "Niet deze"\npreheader: "Kort\\e[5m"\n---\n'
                       'Beste lezer,\x1b[2J\n\nTekst.\n', encoding="utf-8")
    run_cli("subscribers", "add", "anna@gemeente.example.nl", "--list", "nieuws")
    run_cli("campaigns", "create", "--content", str(content), "--list", "nieuws",
            "--subject", "Nieuws\x1b]0;pwned\x07 van GT")
    no_controls(run_cli("campaigns", "status", "1").output)
    no_controls(run_cli("campaigns", "ls").output)
    with session_scope(app.sessions) as session:
        from mailer.campaigns.models import Campaign
        campaign = session.get(Campaign, 1)
        assert (campaign.subject, campaign.preheader) == ("Nieuws]0;pwned van GT", "Kort[5m")
        assert "\x1b" not in campaign.content

    run_cli("users", "add", "redactie@gt.example.nl", "--role", "editor", "--name", NASTY)
    listing = run_cli("users", "ls")
    no_controls(listing.output)
    assert json.loads(run_cli("users", "ls", "--json").output)[0]["name"] == CLEAN


def test_staff_typed_texts_lose_controls_in_the_console(app, run_cli):
    from console_support import console_client, make_account, post, sign_in
    from delivery_support import make_audience

    make_audience(app.sessions, 2)
    admin = make_account(app, "adm@gt.example.nl", "admin")
    editor = make_account(app, "red@gt.example.nl", "editor")
    client, ed = console_client(app), console_client(app)
    sign_in(client, admin)
    sign_in(ed, editor)
    # A NUL anywhere in a console form is a 400, as on the subscriber pages; other controls go.
    nul = post(client, "/users", "/users", {"email": "nul@gt.example.nl", "role": "viewer",
                                            "name": NASTY})
    assert nul.status_code == 400
    added = post(client, "/users", "/users", {"email": "nieuw@gt.example.nl", "role": "viewer",
                                              "name": NASTY.replace("\x00", "")})
    assert added.status_code == 200
    created = post(ed, "/campaigns/new", "/campaigns/new", {
        "subject": "Nieuws\x1b[2J van GT", "preheader": "Kort\x07", "lists": "nieuwsbrief",
        "body": "Beste {{ subscriber.name }},\x1b]0;x\x07\n\nTekst.\n"})
    assert created.status_code == 303, created.text
    # A NUL typed at the sign-in page was a 500 on PostgreSQL (the look-up of the address).
    fresh = console_client(app)
    refused = post(fresh, "/signin", "/signin", {"email": "x\x00@gt.example.nl",
                                                 "password": "wrong"})
    assert refused.status_code == 400
    assert fresh.get("/signin?x=%00").status_code == 400
    failed = post(fresh, "/signin", "/signin", {"email": "x\x1b[2J\x07@gt.example.nl",
                                                "password": "wrong"})
    assert failed.status_code in (200, 400)
    with session_scope(app.sessions) as session:
        from mailer.accounts.models import ConsoleUser
        from mailer.audit.models import AuditEntry
        from mailer.campaigns.models import Campaign

        (campaign,) = session.query(Campaign).all()
        assert (campaign.subject, campaign.preheader) == ("Nieuws[2J van GT", "Kort")
        assert "\x1b" not in campaign.content and "\x07" not in campaign.content
        user = session.query(ConsoleUser).filter_by(email="nieuw@gt.example.nl").one()
        assert user.name == CLEAN
        for entry in session.query(AuditEntry).all():
            no_controls(entry.actor + json.dumps(entry.after or {}, ensure_ascii=False))
    no_controls(run_cli("audit", "ls").output)
