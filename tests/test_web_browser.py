"""The subscriber pages in a real headless Chromium (Debian's), served by uvicorn on loopback.

Each test starts from a real mail: a newsletter rendered and sent through the capture SMTP
server, or the confirmation mail the subscribe form sends; the link is parsed out of the
captured message and followed in the browser. Outside CI a missing Chromium skips these tests;
under CI=true they must run. Screenshots of every page go to $MAILER_SCREENSHOTS if set (the
docs use `MAILER_SCREENSHOTS=docs/screenshots`), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest
from browser_support import BROWSER_MARKS, pages_served, wait_for
from web_support import link_in, messages, setup_people, subscription_states

from mailer.app import App, build_app
from mailer.campaigns.models import Campaign
from mailer.compose import Recipient, build_renderer
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.delivery.transport import send_message_sync
from mailer.settings import load_settings
from mailer.web.server import bind
from subscribers import service

# Read at import: the `env` fixture clears MAILER_* variables for each test.
SCREENSHOTS = os.environ.get("MAILER_SCREENSHOTS", "")

pytestmark = BROWSER_MARKS

NEWSLETTER = """\
# Nieuws van GT

Het afgelopen jaar sloten bijna alle deelnemende gemeenten aan op de nieuwe raamovereenkomsten
voor vaste en mobiele telefonie. In deze nieuwsbrief leest u wat dat voor uw gemeente betekent.

## Regiobijeenkomsten

In april praten we u bij in vijf regiobijeenkomsten. U ontvangt binnenkort een uitnodiging.
"""


@dataclass
class Site:
    app: App
    base: str
    capture: CaptureServer
    ids: dict[str, int]
    shots: Path

    def mails_to(self, address: str) -> list:
        return [m for m in messages(self.capture.folder)
                if m["To"].addresses[0].addr_spec == address]

    def wait_for_mail(self, address: str, count: int = 1) -> list:
        wait_for(lambda: len(self.mails_to(address)) >= count)
        return self.mails_to(address)

    def send_newsletter(self, address: str) -> None:
        """Render the newsletter for one subscriber and send it through the capture server."""
        settings = self.app.settings
        with session_scope(self.app.sessions) as session:
            campaign = Campaign(subject="Nieuws van GT", content=NEWSLETTER,
                                audience={"lists": ["nieuwsbrief"]})
            session.add(campaign)
            session.flush()
            person = service.get_subscriber(session, address)
            recipient = Recipient(
                subscriber_id=person.id, email=person.email, name=person.name,
                organisation=person.organisation, job_title=person.job_title,
                region=person.region, language=person.language,
                attributes=MappingProxyType(dict(person.attributes)),
            )
            renderer = build_renderer(session, campaign, settings, self.app.signer)
            data = renderer.message_bytes(recipient)
            envelope = renderer.envelope_sender(recipient)
        send_message_sync(settings, envelope, [address], data)

    def footer_link(self, address: str, kind: str) -> str:
        """The `kind` link (u, p, v) in the HTML footer of the newsletter sent to `address`."""
        (mail,) = [m for m in self.wait_for_mail(address) if "Nieuws van GT" in m["Subject"]]
        html = mail.get_body(preferencelist=("html",)).get_content()
        found = re.findall(r'href="(' + re.escape(self.base) + "/" + kind + r'/[^"]+)"', html)
        assert found, f"no /{kind}/ link in the newsletter's HTML"
        return found[-1]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 760, "height": 560}, locale="nl-NL")
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def site(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """uvicorn serving the pages on a loopback port of its own, mail going to a capture server."""
    capture = CaptureServer(tmp_path / "outbox").start()
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("MAILER_SMTP_PORT", str(capture.port))
    monkeypatch.setenv("MAILER_BASE_URL", base)
    app = build_app(load_settings())
    ids = setup_people(app)
    shots = Path(SCREENSHOTS).resolve() if SCREENSHOTS else tmp_path / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with pages_served(app, sock):
            yield Site(app, base, capture, ids, shots)
    finally:
        app.close()
        capture.stop()


def shoot(site: Site, page, name: str) -> None:
    page.screenshot(path=str(site.shots / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(("address", "lang", "button", "done"), [
    ("anna@gemeente.example.nl", "nl", "Afmelden", "U bent afgemeld"),
    ("john@example.org", "en", "Unsubscribe", "You have been unsubscribed"),
])
def test_unsubscribe_through_the_footer_link_of_a_real_mail(site, page, address, lang, button,
                                                            done):
    site.send_newsletter(address)
    view = site.footer_link(address, "v")
    page.goto(view)
    assert page.locator("h1").first.inner_text() == "Nieuws van GT"
    shoot(site, page, f"view-online-{lang}")

    page.goto(site.footer_link(address, "u"))
    assert page.locator("html").get_attribute("lang") == lang
    shoot(site, page, f"unsubscribe-{lang}")
    assert subscription_states(site.app, address)[1]["nieuwsbrief"] == "active"
    page.get_by_role("button", name=button).click()
    page.wait_for_selector(f"h1:has-text('{done}')")
    shoot(site, page, f"unsubscribed-{lang}")
    assert subscription_states(site.app, address)[1]["nieuwsbrief"] == "unsubscribed"


@pytest.mark.parametrize(("address", "lang", "save", "saved"), [
    ("anna@gemeente.example.nl", "nl", "Opslaan", "Uw voorkeuren zijn opgeslagen."),
    ("john@example.org", "en", "Save", "Your preferences have been saved."),
])
def test_change_preferences(site, page, address, lang, save, saved):
    site.send_newsletter(address)
    page.goto(site.footer_link(address, "p"))
    shoot(site, page, f"preferences-{lang}")
    page.get_by_label("GT Nieuwsbrief").uncheck()
    page.get_by_label("Regio Noord").check()
    page.get_by_role("button", name=save).click()
    page.wait_for_selector(f"text={saved}")
    status, subs = subscription_states(site.app, address)
    assert status == "active"
    assert subs["nieuwsbrief"] == "unsubscribed"
    assert subs["regio-noord"] == "active"
    assert page.get_by_label("Regio Noord").is_checked()


@pytest.mark.parametrize(("lang", "words"), [
    ("nl", {"email": "E-mailadres", "button": "Aanmelden", "sent": "Kijk in uw mailbox",
            "confirm": "Ja, ik meld mij aan", "done": "Uw aanmelding is bevestigd"}),
    ("en", {"email": "E-mail address", "button": "Subscribe", "sent": "Check your inbox",
            "confirm": "Yes, confirm my subscription", "done": "Your subscription is confirmed"}),
])
def test_subscribe_and_confirm_by_the_mailed_link(site, page, lang, words):
    address = f"nieuw-{lang}@gemeente.example.nl"
    page.goto(f"{site.base}/subscribe/regio-noord" + ("?lang=en" if lang == "en" else ""))
    shoot(site, page, f"subscribe-{lang}")
    page.get_by_label(words["email"]).fill(address)
    page.locator("#name").fill("Sanne Bakker" if lang == "nl" else "Sam Baker")
    page.get_by_role("button", name=words["button"]).click()
    page.wait_for_selector(f"h1:has-text('{words['sent']}')")
    shoot(site, page, f"subscribe-sent-{lang}")
    assert subscription_states(site.app, address)[1] == {"regio-noord": "pending"}

    (mail,) = site.wait_for_mail(address)
    page.goto(link_in(mail, f"{site.base}/c/"))
    shoot(site, page, f"confirm-{lang}")
    assert subscription_states(site.app, address)[1] == {"regio-noord": "pending"}
    page.get_by_role("button", name=words["confirm"]).click()
    page.wait_for_selector(f"h1:has-text('{words['done']}')")
    shoot(site, page, f"confirmed-{lang}")
    assert subscription_states(site.app, address)[1] == {"regio-noord": "active"}


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_a_broken_link_gets_a_friendly_page(site, page, lang):
    answer = page.goto(f"{site.base}/u/not-a-valid-token?lang={lang}")
    assert answer is not None and answer.status == 400
    shoot(site, page, f"invalid-link-{lang}")
