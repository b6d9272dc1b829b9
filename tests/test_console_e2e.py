"""Issue 14's "done when", in headless Chromium on SQLite and PostgreSQL: an editor signs in
with TOTP, writes a newsletter with an image, previews it at phone width, picks Noord and
Oost, sends a test (its links work), asks for approval; an approver reads the pre-flight
checklist, approves and schedules it; the service starts and delivers it; the dashboard and
the campaign page show the progress; the audit trail shows each step with its actor. Every
page on the way passes axe-core (WCAG 2.1 AA) with no CSP violation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser_support import BROWSER_MARKS, pages_served, wait_for
from console_support import axe_violations, console_served, make_account
from delivery_support import make_audience
from PIL import Image
from sqlalchemy import update
from test_console_browser import SHOTS, Checked, frame_text, sign_in
from web_support import messages

from mailer.app import App
from mailer.campaigns.models import Campaign
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.service.scheduler import Service
from mailer.web.server import bind

pytestmark = BROWSER_MARKS

BODY = ("Beste {{ subscriber.name }},\n\n## Raamcontracten\n\nHet **nieuws** van deze maand, "
        "met meer op [onze site](https://www.gt.example.nl/raamcontracten).\n\n")


@pytest.fixture
def pages_socket(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> socket.socket:
    """The subscriber pages' listener on a free port, and base_url pointing there (set before
    the settings are read, so image URLs and links in the mail name it)."""
    sock = bind("127.0.0.1", 0)
    monkeypatch.setenv("MAILER_BASE_URL", f"http://127.0.0.1:{sock.getsockname()[1]}")
    return sock


class Page(Checked):
    """Checked, waiting for the page's load rather than network idle: the editor's live
    preview replaces its frames' documents, and a frame whose navigation was replaced may
    never report network idle to the page."""

    def check(self, shot: str = "") -> None:
        self.page.wait_for_load_state("load")
        self.page.wait_for_function("() => !document.querySelector('.htmx-request')")
        assert axe_violations(self.page) == [], self.page.url
        assert self.problems == [], self.problems
        if SHOTS and shot:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"console-{shot}.png"), full_page=True)


def _deliver(app: App, *, start_only: bool = False) -> None:
    """What `mailer run` does on a poll (start what is due), then its delivery engine until
    nothing is left: on a thread of its own, as this one runs Playwright's loop."""
    import threading

    failures: list[BaseException] = []

    def work() -> None:
        try:
            if start_only:
                Service(app).start_due()
                return

            async def engine() -> None:
                await app.delivery_engine().run(asyncio.Event(), until_idle=True)

            asyncio.run(engine())
        except BaseException as exc:  # handed to the test
            failures.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert not thread.is_alive() and not failures, failures


def test_newsletter_from_editor_to_delivered(browser: Any, pages_socket: socket.socket,
                                             capture: CaptureServer, app: App,
                                             tmp_path: Path) -> None:
    people = make_audience(app.sessions, 10)  # round-robin regions: two each in Noord and Oost
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    approver = make_account(app, "eindredactie@gt.example.nl", "approver")
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    picture = tmp_path / "kaart.png"
    Image.new("RGB", (120, 60), (20, 80, 160)).save(picture)
    pages_base = app.settings.web.base_url
    with console_served(app) as base, pages_served(app, pages_socket):
        ed = Page(browser.new_context(viewport={"width": 1280, "height": 900},
                                         locale="nl-NL"))
        sign_in(ed, base, editor.email, editor.password, editor.code())
        p = ed.page
        p.get_by_role("link", name="Nieuwsbrieven").click()
        p.get_by_role("link", name="Nieuwe nieuwsbrief").click()
        p.fill("#subject", "Nieuws van GT: april")
        p.fill("#preheader", "Raamcontracten en regiobijeenkomsten")
        p.fill("#body", BODY)
        # The image: uploaded, checked, and its Markdown put where the cursor is.
        p.locator("#body").press("End")
        p.set_input_files("#image", str(picture))
        p.fill("#image-alt", "Kaart van de regio's")
        p.get_by_role("button", name="Afbeelding uploaden").click()
        wait_for(lambda: "/media/" in p.input_value("#body"))
        body = p.input_value("#body")
        image_url = body[body.index(f"{pages_base}/media/"):].split(")", 1)[0]
        assert "![Kaart van de regio's](" in body
        assert p.inner_text("#image-result") == "De afbeelding staat in de tekst."
        # The audience: Noord and Oost, with its live count and who is in it.
        p.get_by_label("Nieuwsbrief").check()
        p.get_by_label("Noord").check()
        p.get_by_label("Oost").check()
        wait_for(lambda: p.inner_text("#audience-count").strip() == "4")
        wait_for(lambda: p.locator("#sample-list li").count() == 4)
        # The live preview through the real renderer, at phone width, with the image loaded
        # from the subscriber pages.
        frame = p.frame(name="preview-nl")
        assert frame is not None
        wait_for(lambda: "Voorbeeld Ontvanger" in frame_text(frame)
                 and "/media/" in frame_text(frame))
        wait_for(lambda: frame.evaluate(
            "() => [...document.images].some(i => i.complete && i.naturalWidth === 120)"))
        box = p.locator("iframe[name=preview-nl]").bounding_box()
        assert box is not None and round(box["width"]) == 375
        ed.check("editor-image")
        # The audience saved as a segment for later (the CLI's --segment); the text stays.
        p.fill("#segment_name", "Noord en Oost")
        p.get_by_role("button", name="Doelgroep opslaan").click()
        p.wait_for_selector("text=De doelgroep is opgeslagen")
        assert image_url in p.input_value("#body")
        assert p.get_by_label("Oost").is_checked()
        ed.check()
        p.get_by_role("button", name="Concept opslaan").click()
        p.wait_for_url(f"{base}/campaigns/*")
        campaign_url = p.url
        campaign_id = int(campaign_url.rsplit("/", 1)[1])
        # The checklist is on the campaign page; offline checks say so, they do not fail.
        p.wait_for_selector("#checklist")
        assert "In orde:" in p.inner_text("#check-render")
        assert "Kon niet controleren:" in p.inner_text("#check-links")

        # A test to a subscriber's own address: its links open that person's pages.
        p.fill("#test-to", people[0])
        p.get_by_role("button", name="Test versturen").click()
        p.wait_for_selector("text=Het testbericht is verstuurd.")
        assert capture.count == 1
        (test_mail,) = messages(capture.folder)
        html = test_mail.get_body(preferencelist=("html",)).get_content()
        assert image_url in html
        visitor = browser.new_context()
        page = visitor.new_page()
        assert page.goto(image_url).status == 200
        unsubscribe = str(test_mail["List-Unsubscribe"]).split("<", 1)[1].split(">", 1)[0]
        assert urlsplit(unsubscribe).netloc == urlsplit(pages_base).netloc
        assert page.goto(unsubscribe).status == 200
        visitor.close()
        ed.check("campaign-draft")

        # Ask for approval: the state shows, and the approver gets a note.
        p.get_by_role("button", name="Goedkeuring vragen voor versie 1").click()
        p.wait_for_url(campaign_url)
        assert "gevraagd door redactie@gt.example.nl" in p.inner_text("#asked")
        wait_for(lambda: capture.count == 3)  # the approver and the admin
        note = [m for m in messages(capture.folder)
                if m["To"].addresses[0].addr_spec == approver.email]
        assert note and campaign_url.replace(base, "") in note[0].get_body().get_content()
        p.goto(f"{base}/campaigns")
        assert "goedkeuring gevraagd" in p.inner_text("tbody")
        ed.check()

        # The approver reads the checklist, approves and schedules.
        ap = Page(browser.new_context(viewport={"width": 1280, "height": 900},
                                         locale="nl-NL"))
        sign_in(ap, base, approver.email, approver.password, approver.code())
        q = ap.page
        q.goto(campaign_url)
        q.wait_for_selector("#checklist")
        ap.check("campaign-checks")
        q.goto(f"{campaign_url}/checks")
        ap.check()
        q.goto(campaign_url)
        q.get_by_role("button", name="Versie 1 goedkeuren").click()
        q.wait_for_url(campaign_url)
        assert q.inner_text("#approver") == approver.email
        q.fill("#at", "2099-04-10T09:00")
        q.get_by_role("button", name="Inplannen").click()
        q.wait_for_url(campaign_url)
        assert "gepland" in q.inner_text("#campaign-status")

        # Its time comes: the service starts it (the dashboard shows it sending), then
        # delivers it (the campaign page shows the figures).
        with session_scope(app.sessions) as session:
            session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
                scheduled_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
        _deliver(app, start_only=True)
        q.goto(f"{base}/")
        running = q.inner_text("#h-running + ul")
        assert "Nieuws van GT: april" in running and "0 van 4 verstuurd" in running
        ap.check("dashboard-running")
        _deliver(app)
        wait_for(lambda: capture.count == 7)
        q.goto(campaign_url)
        wait_for(lambda: q.inner_text("#count-sent") == "4")
        assert "verstuurd" in q.inner_text("#campaign-status")
        ap.check("campaign-delivered")
        delivered = [m for m in messages(capture.folder)
                     if m["To"].addresses[0].addr_spec in people and image_url in
                     m.get_body(preferencelist=("html",)).get_content()]
        assert len(delivered) == 5  # four recipients and the test

        # The audit trail: each step, with its actor.
        ad = Page(browser.new_context(viewport={"width": 1280, "height": 900},
                                         locale="nl-NL"))
        sign_in(ad, base, admin.email, admin.password, admin.code())
        r = ad.page
        r.goto(f"{base}/audit?object=campaign:{campaign_id}")
        rows = r.locator("tbody tr").all_inner_texts()
        steps = [(row.split("\t")[1], row.split("\t")[2]) for row in rows]
        assert steps[::-1] == [
            (editor.email, "campaign.create"), (editor.email, "campaign.test"),
            (editor.email, "campaign.request_approval"),
            (approver.email, "campaign.approve"), (approver.email, "campaign.schedule"),
            ("service", "campaign.start"),
        ]
        ad.check("audit-newsletter")
        r.goto(f"{base}/audit?action=image.upload")
        assert editor.email in r.inner_text("tbody")

        # Without the editor's script an upload answers with a page showing the line to use.
        p.goto(f"{base}/campaigns/new")
        p.set_input_files("#image", str(picture))
        p.evaluate("document.querySelector('[data-image-form]').submit()")
        p.wait_for_url(f"{base}/campaigns/images")
        assert "/media/" in p.inner_text("#image-markdown")
        ed.check()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
