"""Meetings in the console in headless Chromium, on both databases: an editor plans a meeting
on the night the clocks go back (choosing which 02:30), prepares the invitation (preview, count,
test) and records answers by phone while a viewer's page counts them live; an approver sends
the invitations; the attendee list is read and downloaded; the meeting is cancelled. Each role
is refused what it may not do. Every page is checked with axe-core (WCAG 2.1 AA) and for CSP
violations.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from browser_support import BROWSER_MARKS, wait_for
from console_support import console_served, make_account
from sqlalchemy import select
from test_console_browser import Checked, frame_text, sign_in

from mailer.app import App
from mailer.audit.models import AuditEntry
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from subscribers import service as subscribers
from subscribers.service import SubscriberData

pytestmark = BROWSER_MARKS


def _last_sunday(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 31)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


AUTUMN = _last_sunday(2099, 10)


def _context(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL",
                               accept_downloads=True)


def test_meetings_walked_by_each_role(browser: Any, capture: CaptureServer, app: App) -> None:
    with session_scope(app.sessions) as session:
        for address, name in (("anna@assen.nl", "Anna de Vries"),
                              ("bram@emmen.nl", "Bram Bakker")):
            subscribers.add_subscriber(session, SubscriberData(
                email=address, name=name, organisation="Gemeente Assen", region="Noord"))
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    approver = make_account(app, "eindredactie@gt.example.nl", "approver")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    with console_served(app) as base:
        ed = Checked(_context(browser))
        sign_in(ed, base, editor.email, editor.password, editor.code())
        p = ed.page
        p.get_by_role("link", name="Bijeenkomsten").click()
        p.wait_for_url(f"{base}/events")
        ed.check("events-empty")
        p.get_by_role("link", name="Nieuwe bijeenkomst").click()
        p.fill("#title", "GT Connect regio Noord")
        p.select_option("#region", "Noord")
        p.fill("#starts", f"{AUTUMN}T02:30")
        p.fill("#ends", f"{AUTUMN}T04:00")
        p.fill("#venue", "Provinciehuis")
        p.fill("#address", "Martinikerkhof 12\nGroningen")
        p.fill("#capacity", "1")
        p.fill("#description", "02.30 Inloop voor de nachtploeg")
        ed.check("event-new")
        p.get_by_role("button", name="Opslaan").click()
        # The hour happens twice: the page asks which, beside the field.
        p.wait_for_selector("#starts-error")
        assert "happens twice" in p.inner_text("#starts-error")
        ed.check("event-dst-choice")
        p.get_by_label("de tweede (wintertijd, UTC+01:00)").check()
        p.get_by_role("button", name="Opslaan").click()
        p.wait_for_url(f"{base}/events/*")
        assert "De bijeenkomst is gepland." in p.inner_text("main")
        event_url = p.url.split("?")[0]
        assert "02.30–04.00 uur" in p.inner_text("main")

        # A viewer follows the counts; they refresh themselves (htmx polling).
        vi = Checked(_context(browser))
        sign_in(vi, base, viewer.email, viewer.password, viewer.code())
        v = vi.page
        v.goto(event_url)
        assert v.get_by_role("link", name="Wijzigen").count() == 0
        assert v.locator("#rsvp-email").count() == 0
        vi.check("event-viewer")
        v.goto(f"{base}/events/new")
        assert v.get_by_role("heading", name="Geen toegang").is_visible()
        vi.check()
        v.goto(event_url)

        # Answers given by phone: the seat, then the waiting list.
        p.fill("#rsvp-email", "anna@assen.nl")
        p.get_by_label("Ja", exact=True).check()
        p.get_by_role("button", name="Antwoord vastleggen").click()
        p.wait_for_selector("#rsvp-result")
        assert "anna@assen.nl: Ja." in p.inner_text("#rsvp-result")
        p.fill("#rsvp-email", "bram@emmen.nl")
        p.get_by_label("Ja", exact=True).check()
        p.get_by_role("button", name="Antwoord vastleggen").click()
        p.wait_for_selector("text=op de wachtlijst (nummer 1)")
        ed.check("event")
        wait_for(lambda: v.inner_text("#count-waiting") == "1", timeout=20)
        assert v.inner_text("#count-yes") == "1" and v.inner_text("#seats-left") == "0"

        # The invitation: preview through the real renderer, live count, a test copy.
        p.get_by_role("link", name="Uitnodigen").click()
        p.wait_for_url(f"{event_url}/invite")
        wait_for(lambda: p.inner_text("#invite-count").strip() == "2")
        frame = p.frame(name="preview-nl")
        assert frame is not None
        wait_for(lambda: "GT Connect regio Noord" in frame_text(frame))
        assert p.get_by_role("button", name="Uitnodigingen versturen").count() == 0
        p.fill("#to", "anna@assen.nl")
        p.get_by_role("button", name="Test versturen").click()
        p.wait_for_selector("text=Het testbericht is verstuurd.")
        wait_for(lambda: capture.count >= 2)  # the test, and the confirmation of the seat
        ed.check("event-invite")

        ap = Checked(_context(browser))
        sign_in(ap, base, approver.email, approver.password, approver.code())
        q = ap.page
        q.goto(f"{event_url}/invite")
        q.get_by_role("button", name="Uitnodigingen versturen").click()
        q.wait_for_url(f"{event_url}?notice=invited")
        assert "De uitnodigingen worden verstuurd." in q.inner_text("main")
        ap.check()

        # The attendee list: on screen for the viewer, downloads for the editor only.
        v.goto(f"{event_url}/attendees")
        assert v.get_by_role("link", name="Downloaden (Excel)").count() == 0
        assert "Bram Bakker" in v.inner_text("#attendees")
        vi.check()
        v.goto(f"{event_url}/attendees.xlsx")
        assert v.get_by_role("heading", name="Geen toegang").is_visible()
        v.goto(f"{event_url}/invite")
        assert v.get_by_role("heading", name="Geen toegang").is_visible()
        p.goto(f"{event_url}/attendees")
        rows = p.locator("#attendees tbody tr").all_inner_texts()
        assert [r.split("\t")[0] for r in rows] == ["Anna de Vries", "Bram Bakker"]
        with p.expect_download() as download:
            p.get_by_role("link", name="Downloaden (Excel)").click()
        assert download.value.suggested_filename.endswith(".xlsx")
        ed.check("event-attendees")

        # Cancelling: the tick, then the button; the invitees are told.
        p.goto(event_url)
        p.get_by_label("Ja, afgelasten en de genodigden berichten").check()
        p.get_by_role("button", name="Bijeenkomst afgelasten").click()
        p.wait_for_url(f"{event_url}?notice=cancelled")
        assert p.inner_text("#event-status") == "afgelast"
        ed.check()
        p.goto(f"{base}/events")
        ed.check("events")
        p.get_by_role("link", name="English").click()
        p.goto(event_url)
        assert p.get_by_role("heading", name="Answers").is_visible()
        ed.check()

    with session_scope(app.sessions) as session:
        actions = [(e.actor, e.action) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "event").order_by(AuditEntry.id))]
    assert actions == [
        (editor.email, "event.create"), (editor.email, "event.rsvp"),
        (editor.email, "event.rsvp"), (editor.email, "event.invite.test"),
        (approver.email, "event.invite"), (editor.email, "event.attendees.export"),
        (editor.email, "event.cancel"),
    ]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
