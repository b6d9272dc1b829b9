"""The console's list and bounce pages in headless Chromium, on SQLite and PostgreSQL: an admin
creates and edits a list, applies a held report, resumes a paused domain and reactivates after
an outage (counted, then confirmed); a viewer reads the same pages and is refused the actions.
Every page is checked with axe-core (WCAG 2.1 AA) and for CSP violations.
"""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import BROWSER_MARKS
from console_support import console_served, make_account
from test_console_browser import Checked, sign_in
from test_console_lists_bounces import ANNA, BIG, _bounce_world

from mailer.app import App
from mailer.database.connect import session_scope
from subscribers import service as subscribers

pytestmark = BROWSER_MARKS


def _context(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL")


def _status(app: App, email: str) -> str:
    with session_scope(app.sessions) as session:
        return subscribers.get_subscriber(session, email).status


def test_an_admin_works_lists_and_bounces(browser: Any, app: App) -> None:
    held_id = _bounce_world(app)
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    with console_served(app) as base:
        ad = Checked(_context(browser))
        sign_in(ad, base, admin.email, admin.password, admin.code())
        p = ad.page
        p.get_by_role("link", name="Lijsten").click()
        p.wait_for_url(f"{base}/lists")
        ad.check("lists")
        # The CLI's one-line error, beside the field, keeping what was typed.
        p.fill("#slug", "Regio Noord")
        p.fill("#title", "Regio Noord")
        p.get_by_role("button", name="Lijst aanmaken").click()
        p.wait_for_selector("#slug-error")
        assert "invalid list slug" in p.inner_text("#slug-error")
        assert p.input_value("#title") == "Regio Noord"
        ad.check()
        p.fill("#slug", "regio-noord")
        p.get_by_label("dubbel (bevestigen per e-mail)").check()
        p.get_by_label("Openbaar: aanmeldformulier en voorkeurenpagina").check()
        p.get_by_role("button", name="Lijst aanmaken").click()
        p.wait_for_url(f"{base}/lists/regio-noord?done=created")
        assert p.get_by_text("De lijst is aangemaakt.").is_visible()
        ad.check("list")
        p.fill("#description", "Nieuws uit het noorden")
        p.get_by_role("button", name="Opslaan").click()
        p.wait_for_url(f"{base}/lists/regio-noord?done=saved")
        assert "Nieuws uit het noorden" in p.inner_text("main")

        p.get_by_role("link", name="Bounces").first.click()
        p.wait_for_url(f"{base}/bounces")
        assert f"lid0@{BIG}" in p.inner_text("main")
        ad.check("bounces")
        p.get_by_role("link", name="Cijfers").click()
        p.wait_for_url(f"{base}/bounces/figures")
        ad.check("bounce-figures")
        p.get_by_role("link", name="Te beoordelen").click()
        p.wait_for_url(f"{base}/bounces/review")
        assert "<script>alert(1)</script>" in p.inner_text("main")  # shown, as text
        assert p.locator("main a[href^='https://evil']").count() == 0
        ad.check("bounce-review")
        p.get_by_role("link", name=f"Melding {held_id} bekijken").click()
        p.wait_for_url(f"{base}/bounces/{held_id}")
        assert "\\x1b[2J" in p.inner_text("pre.raw")
        ad.check()
        p.go_back()
        p.get_by_role("button", name=f"Melding {held_id} toepassen").click()
        p.wait_for_selector(f"text=Melding #{held_id} is toegepast.")
        assert _status(app, ANNA) == "bounced"
        ad.check()

        p.get_by_role("link", name="Gepauzeerde domeinen").click()
        p.wait_for_url(f"{base}/bounces/pauses")
        ad.check("bounce-pauses")
        p.get_by_role("button", name=f"Bezorging naar {BIG} hervatten").click()
        p.wait_for_selector(f"text=Bezorging naar {BIG} is hervat.")
        ad.check()

        p.get_by_role("link", name="Heractiveren").click()
        p.wait_for_url(f"{base}/bounces/reactivate")
        ad.check("bounce-reactivate")
        p.get_by_label("user-unknown").check()
        p.fill("#domain", BIG)
        p.get_by_role("button", name="Tellen").click()
        p.wait_for_selector("text=3 abonnee(s) zouden weer actief worden")
        assert _status(app, f"lid0@{BIG}") == "bounced"  # counting changes nothing
        ad.check()
        p.fill("#note", "storing bij grootmail")
        p.get_by_role("button", name="3 abonnee(s) heractiveren").click()
        p.wait_for_selector("#reactivated")
        assert all(_status(app, f"lid{i}@{BIG}") == "active" for i in range(3))
        ad.check()

        p.goto(f"{base}/audit?action=bounce.apply")
        assert admin.email in p.inner_text("tbody")


def test_a_viewer_reads_and_is_refused(browser: Any, app: App) -> None:
    held_id = _bounce_world(app)
    with session_scope(app.sessions) as session:
        subscribers.create_list(session, "nieuwsbrief-extra", "GT Extra")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer", totp=False)
    with console_served(app) as base:
        vw = Checked(_context(browser))
        sign_in(vw, base, viewer.email, viewer.password, None)
        p = vw.page
        p.get_by_role("link", name="Lijsten").click()
        p.wait_for_url(f"{base}/lists")
        assert p.locator("#list-new").count() == 0
        vw.check()
        p.goto(f"{base}/lists/nieuwsbrief-extra")
        assert p.locator("#list-edit").count() == 0
        vw.check()
        for path in ("/bounces", "/bounces/figures", "/bounces/pauses", f"/bounces/{held_id}"):
            p.goto(f"{base}{path}")
            vw.check()
        p.goto(f"{base}/bounces/review")
        assert p.get_by_role("button", name=f"Melding {held_id} toepassen").count() == 0
        assert p.get_by_role("link", name="Heractiveren").count() == 0
        vw.check()
        refused = p.goto(f"{base}/bounces/reactivate")
        assert refused is not None and refused.status == 403
        assert p.get_by_role("heading", name="Geen toegang").is_visible()
        vw.check()
        assert _status(app, ANNA) == "active"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
