"""The subscriber pages over HTTP, on SQLite and PostgreSQL: unsubscribe (page and RFC 8058
one-click), preferences, tokens, CSRF, security headers, redirects."""

from __future__ import annotations

import datetime as dt
import re
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # Starlette's notice about its future httpx successor
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from web_support import (
    BASE,
    body_text,
    consent_actions,
    csrf_token,
    link_in,
    messages,
    pow_solution,
    setup_people,
    subscription_states,
)

from mailer.app import App
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.kernel.links import Links
from mailer.kernel.tokens import CONFIRM, Signer
from mailer.web.app import create_web_app
from mailer.web.texts import TEXTS
from subscribers import service


@pytest.fixture
def people(app: App) -> dict[str, int]:
    return setup_people(app)


@pytest.fixture
def links(app: App) -> Links:
    return Links(app.settings.web.base_url, app.signer)


def path(url: str) -> str:
    return url.removeprefix(BASE)


# -- unsubscribe -------------------------------------------------------------------------------


def test_get_shows_a_button_and_unsubscribes_nobody(client, app, people, links):
    url = path(links.unsubscribe(people["anna"], people["campaign"]))
    for _ in range(3):  # a link scanner fetching the page, more than once
        page = client.get(url)
        assert page.status_code == 200
    assert "anna@gemeente.example.nl" in page.text
    assert "GT Nieuwsbrief" in page.text
    assert '<button type="submit">Afmelden</button>' in page.text
    assert subscription_states(app, "anna@gemeente.example.nl") == (
        "active", {"nieuwsbrief": "active", "regio-noord": "active"}
    )


def test_one_click_post_unsubscribes_from_the_campaigns_lists_idempotently(
    client, app, people, links
):
    url = path(links.unsubscribe(people["anna"], people["campaign"]))
    client.cookies.clear()
    for _ in range(2):
        answer = client.post(
            url, data={"List-Unsubscribe": "One-Click"}, headers={"cookie": ""}
        )
        assert answer.status_code == 200
        assert "set-cookie" not in answer.headers
    # The campaign went to `nieuwsbrief`: that list is left, the other kept.
    assert subscription_states(app, "anna@gemeente.example.nl") == (
        "active", {"nieuwsbrief": "unsubscribed", "regio-noord": "active"}
    )
    with session_scope(app.sessions) as session:
        actions = consent_actions(session, "anna@gemeente.example.nl")
    assert actions.count(("unsubscribe", "nieuwsbrief", "one-click")) == 1
    # The history names the campaign, so its live status counts who left through its link.
    with session_scope(app.sessions) as session:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        assert service.unsubscribed_from_campaign(session, people["campaign"], since) == 1


def test_one_click_as_multipart_and_without_campaign_leaves_everything(client, app, people, links):
    url = path(links.unsubscribe(people["anna"]))
    answer = client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    status, subs = subscription_states(app, "anna@gemeente.example.nl")
    assert status == "unsubscribed"
    assert set(subs.values()) == {"unsubscribed"}


def test_the_page_button_needs_its_csrf_token(client, app, people, links):
    url = path(links.unsubscribe(people["anna"], people["campaign"]))
    refused = client.post(url, data={"scope": "lists"})
    assert refused.status_code == 403
    assert "verlopen" in refused.text
    forged = client.post(url, data={"scope": "lists", "csrf": "x" * 43})
    assert forged.status_code == 403
    assert subscription_states(app, "anna@gemeente.example.nl")[1]["nieuwsbrief"] == "active"

    page = client.get(url)
    done = client.post(url, data={"scope": "all", "csrf": csrf_token(page.text)})
    assert done.status_code == 200
    assert "U bent afgemeld" in done.text
    status, subs = subscription_states(app, "anna@gemeente.example.nl")
    assert status == "unsubscribed"
    assert set(subs.values()) == {"unsubscribed"}
    again = client.get(url)
    assert "al niet meer" in again.text


def test_a_token_for_another_page_is_refused(client, people, links):
    page = client.get(path(links.unsubscribe(people["anna"])))
    token = csrf_token(page.text)
    # The same cookie, but the token was made for the unsubscribe page, not this one.
    other = path(links.unsubscribe(people["john"]))
    assert client.post(other, data={"scope": "all", "csrf": token}).status_code == 403


def test_cross_site_posts_are_refused_even_with_a_token(client, people, links):
    url = path(links.unsubscribe(people["anna"]))
    token = csrf_token(client.get(url).text)
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        answer = client.post(url, data={"scope": "all", "csrf": token}, headers=headers)
        assert answer.status_code == 403


def test_english_subscribers_get_english_pages(client, people, links):
    page = client.get(path(links.unsubscribe(people["john"], people["campaign"])))
    assert '<html lang="en">' in page.text
    assert "Unsubscribe" in page.text


# -- tokens ------------------------------------------------------------------------------------


def test_tampered_expired_and_wrong_purpose_tokens_get_a_friendly_400(
    client, app, people, links
):
    good = path(links.unsubscribe(people["anna"]))
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    wrong_purpose = "/u/" + path(links.preferences(people["anna"])).removeprefix("/p/")
    other_key = Links(BASE, Signer("another-secret-key-0123456789abcdef")).unsubscribe(
        people["anna"])
    for url in (tampered, wrong_purpose, path(other_key), "/u/not-a-token", "/p/x", "/v/x.y.z"):
        page = client.get(url)
        assert page.status_code == 400, url
        assert "Deze link werkt niet" in page.text
        assert "anna" not in page.text
        assert "Traceback" not in page.text
        if url.startswith("/u/"):
            one_click = client.post(url, data={"List-Unsubscribe": "One-Click"})
            assert one_click.status_code == 400
    assert subscription_states(app, "anna@gemeente.example.nl")[0] == "active"

    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=app.settings.web.confirm_link_hours + 1)
    import itsdangerous.timed

    real_time = itsdangerous.timed.TimestampSigner.get_timestamp
    itsdangerous.timed.TimestampSigner.get_timestamp = lambda self: int(old.timestamp())
    try:
        expired = links.confirm(people["anna"], [1])
    finally:
        itsdangerous.timed.TimestampSigner.get_timestamp = real_time  # type: ignore[method-assign]
    assert client.get(path(expired)).status_code == 400
    fresh = links.confirm(people["anna"], [1])
    assert client.get(path(fresh)).status_code == 200


def test_a_token_with_a_wrong_payload_is_refused(client, app):
    token = app.signer.sign(CONFIRM, {"s": "1", "l": [1]})
    assert client.get(f"/c/{token}").status_code == 400
    token = app.signer.sign(CONFIRM, {"s": 1, "l": "1"})
    assert client.get(f"/c/{token}").status_code == 400


def test_links_of_an_erased_person_reveal_nothing(client, app, people, links):
    with session_scope(app.sessions) as session:
        service.erase(session, "anna@gemeente.example.nl")
    for url in (links.unsubscribe(people["anna"]), links.preferences(people["anna"])):
        assert client.get(path(url)).status_code == 400
    one_click = client.post(path(links.unsubscribe(people["anna"])),
                            data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200


# -- preferences -------------------------------------------------------------------------------


def _confirm_link(capture: CaptureServer) -> str:
    """The confirmation link in the newest captured mail, as a path."""
    text = body_text(messages(capture.folder)[-1])
    match = re.search(r"http://127\.0\.0\.1:8025(/c/[^\s\"<>]+)", text)
    assert match, text
    return match.group(1)


def _follow_confirmation(client: TestClient, capture: CaptureServer) -> None:
    link = _confirm_link(capture)
    page = client.get(link)
    assert page.status_code == 200
    assert client.post(link, data={"csrf": csrf_token(page.text)}).status_code == 200


def test_preferences_change_lists_and_language(client, app, people, links, capture):
    url = path(links.preferences(people["anna"]))
    page = client.get(url)
    assert page.status_code == 200
    assert "GT Nieuwsbrief" in page.text and "Regio Noord" in page.text
    with session_scope(app.sessions) as session:
        ids = {ml.slug: ml.id for ml in service.get_lists(session, ["nieuwsbrief", "regio-noord"])}
    saved = client.post(url, data={"csrf": csrf_token(page.text), "action": "save",
                                   "list": [str(ids["regio-noord"])], "language": "en"},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{url}?saved=1"
    assert subscription_states(app, "anna@gemeente.example.nl")[1] == {
        "nieuwsbrief": "unsubscribed", "regio-noord": "active"
    }
    after = client.get(saved.headers["location"])
    assert '<html lang="en">' in after.text
    assert "Your preferences have been saved." in after.text

    # Coming back to a list she left takes the link in a mail to her own address.
    back = client.post(url, data={"csrf": csrf_token(after.text), "action": "save",
                                  "list": [str(ids["nieuwsbrief"]), str(ids["regio-noord"])],
                                  "language": "en"})
    assert back.status_code == 200 and back.url.query == b"saved=confirm"
    assert subscription_states(app, "anna@gemeente.example.nl")[1]["nieuwsbrief"] == "unsubscribed"
    _follow_confirmation(client, capture)
    assert subscription_states(app, "anna@gemeente.example.nl")[1]["nieuwsbrief"] == "active"


def test_preferences_leave_everything_and_come_back(client, app, people, links, capture):
    url = path(links.preferences(people["john"]))
    page = client.get(url)
    left = client.post(url, data={"csrf": csrf_token(page.text), "action": "leave"})
    assert "You have been unsubscribed" in left.text
    assert subscription_states(app, "john@example.org")[0] == "unsubscribed"
    page = client.get(url)
    with session_scope(app.sessions) as session:
        list_id = service.get_list(session, "nieuwsbrief").id
    client.post(url, data={"csrf": csrf_token(page.text), "action": "save",
                           "list": [str(list_id)], "language": "en"})
    assert subscription_states(app, "john@example.org") == (
        "unsubscribed", {"nieuwsbrief": "unsubscribed"})
    _follow_confirmation(client, capture)
    assert subscription_states(app, "john@example.org") == ("active", {"nieuwsbrief": "active"})


def test_preferences_offer_only_public_lists_and_ones_the_person_is_on(client, app, people):
    with session_scope(app.sessions) as session:
        service.edit_list(session, "regio-noord", public=False)
    ids = people
    page = client.get(path(Links(BASE, app.signer).preferences(ids["john"])))
    assert "GT Nieuwsbrief" in page.text
    assert "Regio Noord" not in page.text  # not public, and John is not on it
    # A list id that is not offered is ignored, not subscribed to.
    with session_scope(app.sessions) as session:
        hidden = service.get_list(session, "regio-noord").id
    url = path(Links(BASE, app.signer).preferences(ids["john"]))
    client.post(url, data={"csrf": csrf_token(page.text), "action": "save",
                           "list": [str(hidden)], "language": "en"})
    assert "regio-noord" not in subscription_states(app, "john@example.org")[1]
    assert client.get("/subscribe/regio-noord").status_code == 404
    assert client.get("/subscribe/nieuwsbrief").status_code == 200


# -- safety ------------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(client, people, links):
    for url, status in (
        (path(links.unsubscribe(people["anna"])), 200),
        (path(links.preferences(people["anna"])), 200),
        ("/u/forged", 400),
        ("/nowhere", 404),
        ("/static/gt.css", 200),
    ):
        answer = client.get(url)
        assert answer.status_code == status, url
        headers = answer.headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        if not url.startswith("/static/"):
            assert headers["cache-control"] == "no-store"
    assert client.put("/u/x").status_code == 405
    too_big = client.post("/subscribe/nieuwsbrief", content=b"email=" + b"a" * 100_000,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert too_big.status_code == 413
    assert too_big.headers["x-frame-options"] == "DENY"


def test_no_redirect_leaves_the_site(client, people, links):
    for url in ("//evil.example/", "/u/x/", "/subscribe/nieuwsbrief/", "/%2F%2Fevil.example",
                "/subscribe/nieuwsbrief?next=https://evil.example"):
        answer = client.get(url, follow_redirects=False)
        assert answer.status_code in (200, 400, 404), url
        assert "location" not in answer.headers
    url = path(links.preferences(people["anna"]))
    page = client.get(url)
    saved = client.post(url + "?next=https://evil.example",
                        data={"csrf": csrf_token(page.text), "action": "save", "language": "nl"},
                        headers={"host": "evil.example"}, follow_redirects=False)
    # Another host is not served at all (trusted hosts); on ours the CSRF token is bound to
    # the path and the redirect, if any, stays on the page itself.
    assert saved.status_code in (303, 400, 403)
    if saved.status_code == 303:
        assert saved.headers["location"].startswith("/p/")


def test_both_languages_have_every_text():
    assert TEXTS["nl"].keys() == TEXTS["en"].keys()


def test_the_web_command_is_documented_and_reports_a_busy_port(run_cli, app):
    assert "Example:" in run_cli("web", "--help").output
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("web", "--port", str(port), ok=False)
    assert result.exit_code == 1
    assert "cannot listen on 127.0.0.1" in result.output
    assert "Traceback" not in result.output


# -- subscribe and confirm ---------------------------------------------------------------------


def _sign_up(client: TestClient, slug: str, address: str, **extra: str):
    form = client.get(f"/subscribe/{slug}")
    assert form.status_code == 200
    data = {"csrf": csrf_token(form.text), "email": address, "name": "", "organisation": "",
            "language": "nl", "lang": "nl", "altcha": pow_solution(form.text), **extra}
    return client.post(f"/subscribe/{slug}", data=data)


def test_double_opt_in_is_pending_until_the_mailed_link_is_confirmed(
    client, app, people, capture
):
    answer = _sign_up(client, "regio-noord", "piet@gemeente.example.nl", name="Piet Jansen")
    assert answer.status_code == 200
    assert "Kijk in uw mailbox" in answer.text
    assert subscription_states(app, "piet@gemeente.example.nl") == (
        "active", {"regio-noord": "pending"}
    )
    (mail,) = messages(capture.folder)
    assert mail["To"].addresses[0].addr_spec == "piet@gemeente.example.nl"
    confirm = link_in(mail, f"{BASE}/c/")

    page = client.get(path(confirm))  # a link scanner, or the person: nothing happens yet
    assert page.status_code == 200
    assert subscription_states(app, "piet@gemeente.example.nl")[1] == {"regio-noord": "pending"}
    done = client.post(path(confirm), data={"csrf": csrf_token(page.text)})
    assert "Uw aanmelding is bevestigd" in done.text
    assert subscription_states(app, "piet@gemeente.example.nl")[1] == {"regio-noord": "active"}
    again = client.post(path(confirm), data={"csrf": csrf_token(page.text)})
    assert "Uw aanmelding is bevestigd" in again.text

    with session_scope(app.sessions) as session:
        person = service.get_subscriber(session, "piet@gemeente.example.nl")
        assert (person.consent_source, person.consent_by) == ("web", "testclient")
        assert person.consent_at is not None
        assert person.name == "Piet Jansen"
        assert consent_actions(session, "piet@gemeente.example.nl") == [
            ("created", None, "web"),
            ("subscribe-pending", "regio-noord", "web"),
            ("subscribe", "regio-noord", "web"),
        ]


def test_single_opt_in_subscribes_at_once_and_sends_a_welcome(client, app, people, capture):
    answer = _sign_up(client, "nieuwsbrief", "kees@gemeente.example.nl", language="en")
    assert answer.status_code == 200
    assert subscription_states(app, "kees@gemeente.example.nl") == (
        "active", {"nieuwsbrief": "active"}
    )
    (mail,) = messages(capture.folder)
    assert f"{BASE}/c/" not in body_text(mail)


def test_the_answer_does_not_tell_who_is_subscribed(client, app, people, capture):
    with session_scope(app.sessions) as session:
        service.suppress(session, "weg@gemeente.example.nl", "manual")
    pages = {}
    for address in ("anna@gemeente.example.nl", "nieuw@gemeente.example.nl",
                    "weg@gemeente.example.nl"):
        answer = _sign_up(client, "nieuwsbrief", address)
        assert answer.status_code == 200
        pages[address] = answer.text.replace(address, "ADDRESS")
    assert len(set(pages.values())) == 1
    sent = {m["To"].addresses[0].addr_spec: m for m in messages(capture.folder)}
    assert set(sent) == {"anna@gemeente.example.nl", "nieuw@gemeente.example.nl"}
    # The known person is not signed up again and their details are not overwritten.
    with session_scope(app.sessions) as session:
        assert service.get_subscriber(session, "anna@gemeente.example.nl").name == "Anna de Vries"


def test_a_bad_address_gets_the_form_back_and_a_filled_trap_gets_nothing(
    client, app, people, capture
):
    answer = _sign_up(client, "nieuwsbrief", "geen-adres")
    assert answer.status_code == 400
    assert 'aria-invalid="true"' in answer.text
    trapped = _sign_up(client, "nieuwsbrief", "bot@example.org", website="http://spam")
    assert trapped.status_code == 200
    with session_scope(app.sessions) as session:
        assert not service.is_suppressed(session, "bot@example.org")
        with pytest.raises(service.SubscriberNotFoundError):
            service.get_subscriber(session, "bot@example.org")
    assert capture.count == 0


def test_the_subscribe_form_needs_its_csrf_token(client, people):
    answer = client.post("/subscribe/nieuwsbrief", data={"email": "x@example.org"})
    assert answer.status_code == 403
    assert client.get("/subscribe/no-such-list").status_code == 404


@pytest.fixture
def tight_limits(config_file: Path) -> None:
    text = config_file.read_text(encoding="utf-8")
    text = text.replace("subscribe_rate_per_client = 20", "subscribe_rate_per_client = 4")
    config_file.write_text(text, encoding="utf-8")


def test_rate_limits_per_address_and_per_client_across_app_instances(
    tight_limits, client, app, people, capture
):
    for _ in range(3):
        assert _sign_up(client, "regio-noord", "doel@gemeente.example.nl").status_code == 200
    blocked = _sign_up(client, "regio-noord", "doel@gemeente.example.nl")
    assert blocked.status_code == 429
    assert "Even geduld" in blocked.text
    assert capture.count == 3
    # Another app on the same database (another process) sees the same counters.
    with TestClient(create_web_app(app), base_url=BASE) as other:
        assert _sign_up(other, "regio-noord", "doel@gemeente.example.nl").status_code == 429
        assert _sign_up(other, "regio-noord", "ander@gemeente.example.nl").status_code == 200
        # The client has now made 4 attempts that counted: a fifth address is refused too.
        assert _sign_up(other, "regio-noord", "derde@gemeente.example.nl").status_code == 429


# -- data copy and view online -----------------------------------------------------------------


def test_a_copy_of_ones_data_is_mailed_to_the_person_only(client, app, people, links, capture):
    url = path(links.preferences(people["anna"]))
    page = client.get(url)
    answer = client.post(url, data={"csrf": csrf_token(page.text), "action": "export"})
    assert answer.status_code == 200
    assert "kopie van uw gegevens" in answer.text
    (mail,) = messages(capture.folder)
    assert mail["To"].addresses[0].addr_spec == "anna@gemeente.example.nl"
    record = _json_of(mail)
    assert record["email"] == "anna@gemeente.example.nl"
    assert "nieuwsbrief" in record["lists"]
    for _ in range(2):
        client.post(url, data={"csrf": csrf_token(page.text), "action": "export"})
    limited = client.post(url, data={"csrf": csrf_token(page.text), "action": "export"})
    assert limited.status_code == 429
    assert capture.count == 3


def _json_of(mail) -> dict:
    import json

    text = body_text(mail)
    start = text.index("--- begin ---") + len("--- begin ---")
    return json.loads(text[start:text.index("--- einde ---")])


def test_view_online_shows_the_newsletter_for_that_subscriber(client, app, people, links):
    from mailer.campaigns.models import Campaign

    with session_scope(app.sessions) as session:
        campaign = Campaign(subject="Nieuws van GT", content="# Nieuws van GT\n\nBeste lezer,",
                            audience={"lists": ["nieuwsbrief"]})
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    page = client.get(path(links.view(people["anna"], campaign_id)))
    assert page.status_code == 200
    assert "Nieuws van GT" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get(path(links.view(people["anna"], 9999))).status_code == 400


# -- serving -----------------------------------------------------------------------------------


def test_mailer_web_serves_the_pages_until_stopped(env, app):
    import os
    import signal
    import subprocess
    import sys

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "mailer", "web", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket listens
        port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        answer = httpx.get(f"http://127.0.0.1:{port}/u/forged", timeout=10)
        assert answer.status_code == 400
        assert answer.headers["x-frame-options"] == "DENY"
        assert "server" not in answer.headers
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    assert proc.returncode == 0


def test_the_service_part_gives_way_when_the_port_is_taken(app, caplog):
    import asyncio
    import dataclasses
    import socket

    from mailer.web.server import web_part

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        settings = dataclasses.replace(
            app.settings,
            web=dataclasses.replace(app.settings.web, port=taken.getsockname()[1]),
        )
        busy = app.reconfigured(settings)
        asyncio.run(asyncio.wait_for(web_part(busy, asyncio.Event()), 10))
    assert "not served" in caplog.text


def test_the_service_part_stops_when_told(app):
    import asyncio

    import httpx

    from mailer.web.server import bind, serve

    async def scenario() -> int:
        sock = bind("127.0.0.1", 0)
        stop = asyncio.Event()
        task = asyncio.create_task(serve(app, sock, stop))
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"http://127.0.0.1:{sock.getsockname()[1]}/static/gt.css")
        stop.set()
        await asyncio.wait_for(task, 10)
        sock.close()
        return answer.status_code

    assert asyncio.run(scenario()) == 200


def test_web_tables_match_the_migration(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import mailer.database.tables  # noqa: F401
    from subscribers.models import Base

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert [d for d in diff if "web_rate" in repr(d)] == []


def test_sign_ups_not_confirmed_in_time_are_forgotten(client, app, people, capture):
    from mailer.web.cleanup import purge_unconfirmed

    _sign_up(client, "regio-noord", "vergeten@gemeente.example.nl")
    _sign_up(client, "regio-noord", "bevestigd@gemeente.example.nl")
    _sign_up(client, "regio-noord", "john@example.org")  # known: only a request is stored
    (mail,) = [m for m in messages(capture.folder)
               if m["To"].addresses[0].addr_spec == "bevestigd@gemeente.example.nl"]
    confirm = path(link_in(mail, f"{BASE}/c/"))
    client.post(confirm, data={"csrf": csrf_token(client.get(confirm).text)})

    now = dt.datetime.now(dt.UTC)
    purge_unconfirmed(app, now)  # links still valid: nothing happens
    assert subscription_states(app, "vergeten@gemeente.example.nl")[1] == {"regio-noord": "pending"}
    purge_unconfirmed(app, now + dt.timedelta(hours=app.settings.web.confirm_link_hours, minutes=1))
    with session_scope(app.sessions) as session:
        with pytest.raises(service.SubscriberNotFoundError):
            service.get_subscriber(session, "vergeten@gemeente.example.nl")
        assert not service.is_suppressed(session, "vergeten@gemeente.example.nl")
        service.get_subscriber(session, "bevestigd@gemeente.example.nl")
    assert "regio-noord" not in subscription_states(app, "john@example.org")[1]
    with session_scope(app.sessions) as session:  # and the request expired with its link
        from subscribers.models import SignupRequest
        assert session.query(SignupRequest).count() == 0


def test_the_cleanup_part_runs_at_start_and_stops_when_told(client, app, people, monkeypatch):
    import asyncio

    from mailer.web import cleanup

    calls: list[dt.datetime] = []
    monkeypatch.setattr(cleanup, "purge_unconfirmed", lambda _app, now: calls.append(now))

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(cleanup.cleanup_part(app, stop))
        while not calls:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(asyncio.wait_for(scenario(), 20))
    assert len(calls) == 1


def test_list_unsubscribe_header_of_a_sent_newsletter_works_in_one_click(
    client, app, people, capture
):
    from types import MappingProxyType

    from mailer.campaigns.models import Campaign
    from mailer.compose import Recipient, build_renderer
    from mailer.delivery.sender import Message

    with session_scope(app.sessions) as session:
        campaign = session.get(Campaign, people["campaign"])
        campaign.content = "# Nieuws\n\nTekst."
        person = service.get_subscriber(session, "anna@gemeente.example.nl")
        recipient = Recipient(subscriber_id=person.id, public_id=person.public_id,
                              email=person.email, name=person.name,
                              attributes=MappingProxyType({}))
        renderer = build_renderer(session, campaign, app.settings, app.signer)
        data, envelope = renderer.message_bytes(recipient), renderer.envelope_sender(recipient)
    assert app.sender.send_now("test", Message(envelope, person.email, data))[0] == "sent"
    (mail,) = messages(capture.folder)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (url,) = [u.strip("<> ") for u in mail["List-Unsubscribe"].split(",")
              if u.strip(" <").startswith("http")]
    with TestClient(create_web_app(app), base_url=BASE) as provider:  # no cookies, no token
        answer = provider.post(path(url), content=b"List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200
    assert subscription_states(app, "anna@gemeente.example.nl")[1] == {
        "nieuwsbrief": "unsubscribed", "regio-noord": "active"
    }


def test_mailer_run_starts_the_pages_and_the_cleanup(app):
    from mailer.web.cleanup import cleanup_part
    from mailer.web.server import web_part

    found = app.service_parts()
    assert web_part in found and cleanup_part in found


def test_unconfirmed_sign_ups_are_not_in_an_audience_without_lists(client, app, people):
    from subscribers.queries import SubscriberFilter, audience_select

    _sign_up(client, "regio-noord", "wacht@gemeente.example.nl")
    with session_scope(app.sessions) as session:
        everyone = {email for _id, email in session.execute(audience_select(SubscriberFilter()))}
    assert everyone == {"anna@gemeente.example.nl", "john@example.org"}


def test_a_failure_inside_gets_a_friendly_500_with_the_headers(app, settings, tmp_path, links,
                                                                people):
    import dataclasses

    from mailer.app import build_app

    # The same settings on a database without tables: every query fails.
    broken = build_app(dataclasses.replace(
        settings, database=dataclasses.replace(settings.database,
                                               url=f"sqlite:///{tmp_path / 'empty.db'}")
    ), check_schema=False)
    try:
        with TestClient(create_web_app(broken), base_url=BASE,
                        raise_server_exceptions=False) as failing:
            answer = failing.get(path(links.preferences(people["anna"])))
    finally:
        broken.close()
    assert answer.status_code == 500
    assert "Er ging iets mis" in answer.text
    assert "Traceback" not in answer.text and "sqlite" not in answer.text.lower()
    assert answer.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_a_blocked_address_cannot_confirm(client, app, people, capture):
    _sign_up(client, "regio-noord", "later-geblokkeerd@gemeente.example.nl")
    (mail,) = messages(capture.folder)
    confirm = path(link_in(mail, f"{BASE}/c/"))
    token = csrf_token(client.get(confirm).text)
    with session_scope(app.sessions) as session:
        service.block(session, "later-geblokkeerd@gemeente.example.nl", note="test")
    assert "Wij kunnen geen e-mail meer bezorgen" in client.get(confirm).text
    answer = client.post(confirm, data={"csrf": token})
    assert "Wij kunnen geen e-mail meer bezorgen" in answer.text
    assert subscription_states(app, "later-geblokkeerd@gemeente.example.nl") == (
        "blocked", {"regio-noord": "pending"}
    )
