"""The dashboard, the calendar and a campaign's live status with its charts in headless
Chromium: no WCAG 2.1 AA violation (axe-core), no CSP violation, and reachable by keyboard
alone (Tab to a link, Enter to follow it).

With MAILER_SCREENSHOTS=docs/screenshots the test also saves the README's tour pictures.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from browser_support import BROWSER_MARKS
from console_support import axe_violations, console_served, make_account
from dashboard_support import NOW, bounce, campaign, send
from delivery_support import make_audience

from mailer.app import App
from mailer.database.connect import session_scope
from mailer.events.models import Event

pytestmark = BROWSER_MARKS

SHOTS = os.environ.get("MAILER_SCREENSHOTS", "")


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


def tab_to(page: Any, text: str, limit: int = 80) -> None:
    """Press Tab until the focused element's text is `text` (fails after `limit` presses)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"{text!r} not reached by Tab")


def test_dashboard_calendar_and_status_by_keyboard(browser: Any, app: App) -> None:
    make_audience(app.sessions, 20)
    tz = app.settings.tz
    running = campaign(app, "Nieuws van GT: december", started=NOW - dt.timedelta(hours=2))
    sent = send(app, running, 8, NOW - dt.timedelta(minutes=90))
    send(app, running, 6, NOW - dt.timedelta(minutes=30))
    bounce(app, sent[0], "hard", NOW - dt.timedelta(minutes=20), "br1")
    # A scheduled send and a meeting in next month, reached with the calendar's own links.
    first_next = (NOW.astimezone(tz).replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    at = first_next.replace(day=10, hour=9, minute=0, second=0)
    campaign(app, "Nieuws van GT: volgende maand", status="scheduled",
             scheduled_at=at.astimezone(dt.UTC))
    with session_scope(app.sessions) as session:
        session.add(Event(uid="regiodag@gt", title="Regiodag Oost", region="Oost",
                          starts_at=at.replace(day=12, hour=13),
                          ends_at=at.replace(day=12, hour=16)))
    viewer = make_account(app, "lezer@gt.example.nl", "viewer", totp=False)
    with console_served(app) as base:
        page = Checked(browser.new_context(viewport={"width": 1280, "height": 900},
                                           locale="nl-NL"))
        p = page.page
        p.goto(f"{base}/signin")
        p.fill("#email", viewer.email)
        p.fill("#password", viewer.password)
        p.keyboard.press("Enter")
        p.wait_for_url(f"{base}/")
        assert p.inner_text("#figure-sent") == "14"
        assert "Nieuws van GT: december" in p.inner_text("#h-running + ul")
        page.check("dashboard")

        tab_to(p, "Kalender")
        p.keyboard.press("Enter")
        p.wait_for_url(f"{base}/calendar")
        page.check()
        tab_to(p, p.inner_text("#cal-next"))
        p.keyboard.press("Enter")
        p.wait_for_url(f"{base}/calendar?month={first_next:%Y-%m}")
        assert "09:00" in p.inner_text("table.calendar")
        assert "Regiodag Oost" in p.inner_text("table.calendar")
        page.check("calendar")

        p.goto(f"{base}/campaigns/{running}")
        p.wait_for_selector("svg.bars")
        assert p.locator("svg[role=img] title").first.text_content() == "Verstuurd per minuut"
        tab_to(p, "Als tabel")  # the charts' text alternative opens by keyboard
        p.keyboard.press("Enter")
        assert p.locator("details.chart-table[open] table").count() == 1
        page.check("campaign-running")
