"""The RSVP page in a real headless Chromium, from a real invitation.

The invitation is sent by the delivery engine through the capture SMTP server; the Yes link is
taken from the captured HTML and followed in the browser, which clicks the answer. The
confirmation (with the calendar file) and, when a seat frees up, the seat mail must arrive.
Screenshots go to $MAILER_SCREENSHOTS if set, else the test's temporary folder.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS, pages_served, wait_for
from web_support import messages

from mailer.app import App, build_app
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.delivery.engine import DeliveryEngine
from mailer.events import service
from mailer.events.announce import invitation_campaign
from mailer.events.dates import parse_local
from mailer.settings import load_settings
from mailer.web.server import bind
from subscribers import service as subscribers
from subscribers.service import SubscriberData

# Read at import: the `env` fixture clears every MAILER_* variable for the test.
SCREENSHOTS = os.environ.get("MAILER_SCREENSHOTS", "")

pytestmark = BROWSER_MARKS


@dataclass
class Site:
    app: App
    base: str
    capture: CaptureServer
    event_id: int
    shots: Path

    def mails_to(self, address: str) -> list:
        return [m for m in messages(self.capture.folder)
                if m["To"].addresses[0].addr_spec == address]

    def mail_with(self, address: str, subject_start: str):
        def found() -> bool:
            return any(m["Subject"].startswith(subject_start) for m in self.mails_to(address))

        wait_for(found)
        return next(m for m in self.mails_to(address) if m["Subject"].startswith(subject_start))

    def rsvp_link(self, address: str, answer: str) -> str:
        invitation = self.mail_with(address, ("Uitnodiging", "Invitation"))
        html = invitation.get_body(preferencelist=("html",)).get_content()
        found = re.findall(r'href="(' + re.escape(self.base) + r'/r/[^"]+\?a=' + answer + ')"',
                           html)
        assert found, "no RSVP link in the invitation"
        return found[0].replace("&amp;", "&")


@pytest.fixture
def site(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The pages on a loopback port, an invitation to three people already delivered."""
    capture = CaptureServer(tmp_path / "outbox").start()
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("MAILER_SMTP_PORT", str(capture.port))
    monkeypatch.setenv("MAILER_BASE_URL", base)
    app = build_app(load_settings())
    zone = app.settings.timezone
    with session_scope(app.sessions) as session:
        for address, name, language in (("anna@assen.nl", "Anna de Vries", "nl"),
                                        ("bram@emmen.nl", "Bram Bakker", "nl"),
                                        ("john@example.org", "John Smith", "en")):
            subscribers.add_subscriber(session, SubscriberData(
                email=address, name=name, organisation="Gemeente Assen", region="Noord",
                language=language))
        event = service.create_event(session, app.settings, service.EventFields(
            title="GT Connect regio Noord", region="Noord",
            starts_at=parse_local("2099-04-14 13:30", zone),
            ends_at=parse_local("2099-04-14 16:00", zone),
            venue="Provinciehuis", address="Martinikerkhof 12\nGroningen", capacity=1,
            description="13.30 Inloop met koffie\n14.00 Stand van zaken GT Connect",
        ))
        campaign, _count = invitation_campaign(session, app.settings, app.signer, event.id)
        event_id, campaign_id = event.id, campaign.id
    # On a thread of its own: Playwright's sync API keeps an event loop on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, DeliveryEngine(app).run(
            asyncio.Event(), until_idle=True, campaign_ids=[campaign_id], idle_seconds=0.05,
        )).result()
    shots = Path(SCREENSHOTS or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with pages_served(app, sock):
            yield Site(app, base, capture, event_id, shots)
    finally:
        app.close()
        capture.stop()


def test_answer_from_the_invitation_and_the_waiting_list(site: Site, browser) -> None:
    context = browser.new_context(viewport={"width": 760, "height": 1000}, locale="nl-NL")
    page = context.new_page()
    try:
        # Anna clicks "Ja, ik kom" in her invitation: the page offers that answer first.
        page.goto(site.rsvp_link("anna@assen.nl", "yes"))
        assert page.locator("h1").inner_text() == "GT Connect regio Noord"
        assert page.locator("#seats").inner_text() == "Nog 1 van de 1 plaatsen vrij."
        page.screenshot(path=str(site.shots / "rsvp-nl.png"), full_page=True)
        page.get_by_role("button", name="Ja, ik kom").click()
        page.wait_for_selector("p.done")
        assert "U bent aangemeld" in page.locator("p.done").inner_text()
        assert page.locator("#answer").inner_text() == (
            "Uw antwoord: ja, u komt. Er is een plaats voor u."
        )
        assert "vol" in page.locator("#seats").inner_text()
        page.screenshot(path=str(site.shots / "rsvp-saved-nl.png"), full_page=True)
        confirmation = site.mail_with("anna@assen.nl", "Aangemeld:")
        assert [p.get_content_type() for p in confirmation.iter_attachments()] == [
            "application/ics"
        ]

        # John (English) follows his Yes link: the meeting is full, he waits.
        page.goto(site.rsvp_link("john@example.org", "yes"))
        assert page.locator("html").get_attribute("lang") == "en"
        page.get_by_role("button", name="Yes, I will come").click()
        page.wait_for_selector("p.done")
        assert page.locator("#answer").inner_text() == (
            "Your answer: yes. You are on the waiting list (number 1)."
        )
        page.screenshot(path=str(site.shots / "rsvp-waiting-en.png"), full_page=True)
        site.mail_with("john@example.org", "Waiting list:")

        # Anna cannot come after all; she changes her answer from her No link.
        page.goto(site.rsvp_link("anna@assen.nl", "no"))
        page.get_by_role("button", name="Nee, ik kom niet").click()
        page.wait_for_selector("p.done")
        assert page.locator("#answer").inner_text() == "Uw antwoord: nee, u komt niet."
        seat = site.mail_with("john@example.org", "A seat for you:")
        assert [p.get_content_type() for p in seat.iter_attachments()] == ["application/ics"]
        page.goto(site.rsvp_link("john@example.org", "yes"))
        assert page.locator("#answer").inner_text() == (
            "Your answer: yes, you will come. A seat is yours."
        )
    finally:
        context.close()
