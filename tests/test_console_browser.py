"""The console in headless Chromium, end to end: an editor writes a newsletter and asks for
approval, an approver approves and schedules it, the service delivers it, the audit trail shows
who did what. Every page is checked with axe-core (WCAG 2.1 AA) and for CSP violations.

With MAILER_SCREENSHOTS=docs/screenshots the test also saves the README's tour pictures.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from browser_support import BROWSER_MARKS, wait_for
from console_support import axe_violations, console_served, make_account
from delivery_support import make_audience
from sqlalchemy import update

from mailer.app import App
from mailer.campaigns.models import Campaign
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer

pytestmark = BROWSER_MARKS

SHOTS = os.environ.get("MAILER_SCREENSHOTS", "")
BODY = ("Beste {{ subscriber.name }},\n\n## Raamcontracten\n\nHet **nieuws** van deze maand "
        "voor de regio's.\n\n- Mobiele telefonie\n- Vaste netwerken\n")


class Checked:
    """A page that fails the test on any CSP violation or axe-core finding."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.problems: list[str] = []
        self.page.on("console", lambda msg: self.problems.append(msg.text)
                     if "Content Security Policy" in msg.text else None)
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))

    def check(self, shot: str = "") -> None:
        self.page.wait_for_load_state("networkidle")
        assert axe_violations(self.page) == [], self.page.url
        assert self.problems == [], self.problems
        if SHOTS and shot:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"console-{shot}.png"), full_page=True)


def frame_text(frame: Any) -> str:
    """The frame's document, or "" while it is between two documents (a new preview)."""
    from playwright.sync_api import Error

    try:
        return str(frame.content())
    except Error:
        return ""


def sign_in(page: Checked, base: str, email: str, password: str, code: str | None) -> None:
    """By keyboard only: the skip link, the fields in order, Enter to submit."""
    p = page.page
    p.goto(f"{base}/")
    assert p.url.endswith("/signin")
    page.check("signin")
    p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.textContent") == "Naar de inhoud"
    p.keyboard.press("Enter")
    p.locator("#email").focus()
    p.keyboard.type(email)
    p.keyboard.press("Tab")
    p.keyboard.type(password)
    p.keyboard.press("Enter")
    if code is not None:
        p.wait_for_url(f"{base}/signin/code")
        page.check()
        p.keyboard.press("Tab")  # skip link, then the code field
        p.keyboard.press("Tab")
        p.keyboard.press("Tab")
        assert p.evaluate("document.activeElement.id") == "code", p.evaluate(
            "document.activeElement.outerHTML")
        p.keyboard.type(code)
        p.keyboard.press("Enter")
    p.wait_for_url(f"{base}/")


def test_from_draft_to_delivered(browser: Any, capture: CaptureServer, app: App) -> None:
    people = make_audience(app.sessions, 10)  # round-robin regions: two each in Noord and Oost
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    approver = make_account(app, "eindredactie@gt.example.nl", "approver")
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    with console_served(app) as base:
        ed_context = browser.new_context(viewport={"width": 1280, "height": 900},
                                         locale="nl-NL")
        ed = Checked(ed_context)
        sign_in(ed, base, editor.email, editor.password, editor.code())
        ed.check("dashboard-empty")
        p = ed.page
        p.get_by_role("link", name="Nieuwsbrieven").click()
        p.get_by_role("link", name="Nieuwe nieuwsbrief").click()
        p.fill("#subject", "Nieuws van GT: april")
        p.fill("#preheader", "Raamcontracten en regiobijeenkomsten")
        p.fill("#body", BODY)
        p.get_by_label("Nieuwsbrief").check()
        p.get_by_label("Noord").check()
        p.get_by_label("Oost").check()
        wait_for(lambda: p.inner_text("#audience-count").strip() == "4")
        # The live preview, through the real renderer, at phone width (the default).
        for lang, name in (("nl", "Voorbeeld Ontvanger"), ("en", "Sample Recipient")):
            frame = p.frame(name=f"preview-{lang}")
            assert frame is not None
            wait_for(lambda f=frame, n=name: n in frame_text(f))
        width = p.locator("iframe[name=preview-nl]").bounding_box()
        assert width is not None and round(width["width"]) == 375
        ed.check("editor")
        p.get_by_role("button", name="Concept opslaan").click()
        p.wait_for_url(f"{base}/campaigns/*")
        campaign_url = p.url
        campaign_id = int(campaign_url.rsplit("/", 1)[1])
        p.fill("#test-to", people[0])  # tests are personalised as a subscriber: links work
        p.get_by_role("button", name="Test versturen").click()
        p.wait_for_selector("text=Het testbericht is verstuurd.")
        assert capture.count == 1
        assert p.get_by_text("Vraag een fiatteur").is_visible()
        ed.check("campaign-draft")

        ap = Checked(browser.new_context(viewport={"width": 1280, "height": 900},
                                         locale="nl-NL"))
        sign_in(ap, base, approver.email, approver.password, approver.code())
        q = ap.page
        q.goto(campaign_url)
        q.get_by_role("button", name="Versie 1 goedkeuren").click()
        q.wait_for_url(campaign_url)
        assert q.inner_text("#approver") == approver.email
        q.fill("#at", "2099-04-10T09:00")
        q.get_by_role("button", name="Inplannen").click()
        q.wait_for_url(campaign_url)
        assert "gepland" in q.inner_text("#campaign-status")
        ap.check("campaign-scheduled")

        # Time passes: the service finds it due and delivers it to the capture server.
        with session_scope(app.sessions) as session:
            session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
                scheduled_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
        # The service as an operator runs it (its own process: this thread runs Playwright).
        done = subprocess.run([sys.executable, "-m", "mailer", "run", "--once"],
                              capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: capture.count == 5)
        q.goto(campaign_url)
        wait_for(lambda: q.inner_text("#count-sent") == "4")
        assert "verstuurd" in q.inner_text("#campaign-status")
        ap.check("campaign-sent")
        q.goto(f"{base}/campaigns")
        ap.check("campaigns")

        ad = Checked(browser.new_context(viewport={"width": 1280, "height": 900},
                                         locale="nl-NL"))
        sign_in(ad, base, admin.email, admin.password, admin.code())
        r = ad.page
        r.goto(f"{base}/audit?object=campaign:{campaign_id}")
        rows = r.locator("tbody tr").all_inner_texts()
        steps = [(row.split("\t")[1], row.split("\t")[2]) for row in rows]
        assert steps[::-1] == [
            (editor.email, "campaign.create"), (editor.email, "campaign.test"),
            (approver.email, "campaign.approve"), (approver.email, "campaign.schedule"),
            ("service", "campaign.start"),
        ]
        ad.check("audit")
        r.goto(f"{base}/users")
        ad.check("users")
        r.goto(f"{base}/account")
        ad.check("account")
        # English is one click away.
        r.get_by_role("link", name="English").click()
        r.goto(f"{base}/campaigns")
        assert r.get_by_role("heading", name="Newsletters").is_visible()
        ad.check()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
