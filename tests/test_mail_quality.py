"""Every kind of message, checked the way receivers check it: strict MIME parsing, DKIM with
dkimpy, SpamAssassin's local rules, RFC 5546 for each calendar (icalendar and vobject), text
contrast of 4.5:1 or more, buttons Outlook draws, and the HTML in Chromium at phone and
desktop width."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from browser_support import BROWSER_MARKS
from compose_support import SECRET, compose_settings
from contrast_support import buttons_without_cell, contrast, low_contrast_texts, parse_colour
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ical_support import imip_calendar
from mail_gallery import CALENDAR_METHOD, gallery

from mailer.compose.signing import dns_record
from mailer.kernel.tokens import Signer
from mailer.settings import Settings

DOMAIN = "gt.example.nl"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, bytes]]:
    """The gallery, DKIM-signed, and the settings it was built with."""
    folder = tmp_path_factory.mktemp("quality")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = folder / "dkim.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    config = folder / "config.toml"
    config.write_text((Path(__file__).parent.parent / "config.toml").read_text("utf-8")
                      .replace('data_dir = "var"', f'data_dir = "{folder / "var"}"'), "utf-8")
    settings = compose_settings(config, **{
        "dkim.enabled": True, "dkim.domain": DOMAIN, "dkim.selector": "mailer",
        "dkim.key_file": str(key_file),
    })
    return settings, gallery(settings, Signer(SECRET))


NAMES = sorted(gallery(compose_settings(Path(__file__).parent.parent / "config.toml"),
                       Signer(SECRET)))


def _html(data: bytes) -> str:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(("html",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.parametrize("name", NAMES)
def test_parses_strictly_without_defects(signed: Any, name: str) -> None:
    _settings, messages = signed
    msg = email.message_from_bytes(messages[name], policy=email.policy.strict)
    for part in msg.walk():
        assert not part.defects, (name, part.get_content_type(), part.defects)
        for header, value in part.items():
            assert not getattr(value, "defects", ()), (name, header, value.defects)
    assert msg["Date"] and msg["Message-ID"] and msg["From"] and msg["Subject"]


@pytest.mark.parametrize("name", NAMES)
def test_dkim_verifies(signed: Any, name: str) -> None:
    settings, messages = signed
    record = dns_record(settings.resolve_path(settings.dkim.key_file)).encode()

    def dnsfunc(query: bytes, timeout: int = 5) -> bytes | None:
        return record if query == f"mailer._domainkey.{DOMAIN}.".encode() else None

    data = messages[name]
    assert b"c=relaxed/relaxed" in data.split(b"\r\n\r\n", 1)[0]
    assert dkim.verify(data, dnsfunc=dnsfunc), name


@pytest.mark.parametrize("name", [n for n in NAMES if n.split(".")[0] in CALENDAR_METHOD])
def test_calendar_follows_rfc_5546(signed: Any, name: str) -> None:
    _settings, messages = signed
    msg = email.message_from_bytes(messages[name], policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    text = imip_calendar(msg, CALENDAR_METHOD[name.split(".")[0]])
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU" in text
    # The attachment is named in the reader's language.
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() in {
        "nl": ("uitnodiging.ics", "afzegging.ics"), "en": ("invitation.ics", "cancellation.ics"),
    }[name.split(".")[-1]]


@pytest.mark.parametrize("name", NAMES)
def test_text_and_buttons_have_contrast(signed: Any, name: str) -> None:
    _settings, messages = signed
    html = _html(messages[name])
    assert low_contrast_texts(html) == []
    assert buttons_without_cell(html) == []
    assert '<meta name="color-scheme" content="light dark">' in html


def test_the_contrast_checker_catches_the_old_confirm_button() -> None:
    navy, blue = parse_colour("#00365c"), parse_colour("#005ea5")
    assert navy and blue and round(contrast(navy, blue), 2) == 1.87
    html = ('<table><tr><td bgcolor="#00365c"><a class="button" style="color: #005ea5">Ja</a>'
            '</td></tr></table><p style="color: #eef1f5; background-color: #eef1f5">x</p>')
    assert len(low_contrast_texts(html)) == 2


def test_spamassassin_local_rules_score_at_most_zero(signed: Any, tmp_path: Path) -> None:
    binary = shutil.which("spamassassin")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("spamassassin is missing under CI=true")
        pytest.skip("spamassassin is missing: apt-get install spamassassin (CI installs it)")
    _settings, messages = signed
    box_path = tmp_path / "all.mbox"
    box = mailbox.mbox(box_path)
    for data in messages.values():
        box.add(mailbox.mboxMessage(data))
    box.close()
    # Local rules only (-L: no DNS or network tests), every message in one run.
    result = subprocess.run(
        [binary, "-L", "--mbox", "-t"], stdin=box_path.open("rb"), capture_output=True,
        timeout=600, env={**os.environ, "HOME": str(tmp_path)}, check=True,
    )
    out_path = tmp_path / "scored.mbox"
    out_path.write_bytes(result.stdout)
    scored = {}
    for message in mailbox.mbox(out_path):
        status = " ".join(str(message["X-Spam-Status"]).split())
        scored[str(message["Subject"])] = status
    assert len(scored) >= len({m for m in messages}) - 2  # newsletter subject twice
    for subject, status in scored.items():
        score = float(status.split("score=")[1].split()[0])
        assert score <= 0, (subject, status)
        assert "HTML_FONT_LOW_CONTRAST" not in status, (subject, status)




@pytest.mark.browser
@pytest.mark.parametrize("width", [375, 1024])
def test_html_fits_phone_and_desktop_in_chromium(
    signed: Any, browser: Any, width: int, tmp_path: Path
) -> None:
    if BROWSER_MARKS[-1].name == "skip":
        pytest.skip(BROWSER_MARKS[-1].kwargs["reason"])
    _settings, messages = signed
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        for name in NAMES:
            page.set_content(_html(messages[name]), wait_until="load")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{name} at {width}px scrolls sideways ({scroll}px)"
            # Buttons are drawn as buttons: a coloured box taller than the text line.
            for box in page.locator("a.button").all():
                size = box.bounding_box()
                assert size is not None and size["height"] >= 40, (name, size)
                assert size["x"] + size["width"] <= width, (name, size)
            page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
    finally:
        context.close()
