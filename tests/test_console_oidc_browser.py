"""The "Aanmelden met Microsoft" button in headless Chromium, with a real provider on loopback.

The console is served as http://localhost:PORT and the provider as http://127.0.0.1:PORT: two
sites, so the provider's redirect to the callback is a cross-site navigation as with Entra ID,
and the browser applies SameSite as it will in production (the Strict session cookie does not
come with it; the Lax binding cookie does; our own page then carries the person on).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import BROWSER_MARKS
from console_support import axe_violations
from oidc_support import GROUPS, UNMAPPED, console_with_oidc, provider_served, set_user
from sqlalchemy import select

from mailer.accounts.models import ConsoleUser
from mailer.audit.models import AuditEntry
from mailer.database.connect import session_scope
from mailer.settings import Settings

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with provider_served() as url:
        yield url


def _page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(locale="nl-NL")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return context, page, problems


def test_the_button_signs_an_editor_in_through_the_provider(browser: Any, settings: Settings,
                                                            issuer: str):
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    email = f"{sub}@gt.example.nl"
    set_user(issuer, sub, email=email, email_verified=True, name="Anna de Vries",
             groups=[GROUPS["editor"], UNMAPPED])
    with console_with_oidc(settings, issuer, host="localhost") as (app, url):
        context, page, problems = _page(browser)
        page.goto(f"{url}/")
        assert page.url == f"{url}/signin"
        assert axe_violations(page) == []
        # By keyboard: the button is the first control after the skip link and the header.
        button = page.get_by_role("link", name="Aanmelden met Microsoft")
        button.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{issuer}/oauth2/authorize*")
        page.fill("input[name=sub]", sub)
        page.get_by_role("button", name="Authorize").click()
        # Callback, our own page, then the dashboard: signed in with the Strict cookie.
        page.wait_for_url(f"{url}/")
        assert "Overzicht" in page.title()
        assert axe_violations(page) == []
        page.goto(f"{url}/account")
        assert email in page.content()
        cookies = {c["name"]: c for c in context.cookies(url)}
        assert cookies["gt_console"]["sameSite"] == "Strict"
        assert cookies["gt_console"]["httpOnly"]
        assert "gt_console_oidc" not in cookies  # used up
        assert problems == []
        context.close()
    with session_scope(app.sessions) as session:
        user = session.scalar(select(ConsoleUser).where(ConsoleUser.email == email))
        assert user is not None and user.role == "editor"
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert actions == ["user.add", "signin"]


def test_someone_in_no_mapped_group_sees_why(browser: Any, settings: Settings, issuer: str):
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    set_user(issuer, sub, email=f"{sub}@gt.example.nl", email_verified=True, groups=[UNMAPPED])
    with console_with_oidc(settings, issuer, host="localhost") as (_app, url):
        context, page, problems = _page(browser)
        page.goto(f"{url}/signin")
        page.get_by_role("link", name="Aanmelden met Microsoft").click()
        page.wait_for_url(f"{issuer}/oauth2/authorize*")
        page.fill("input[name=sub]", sub)
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{url}/signin/oidc/callback*")
        assert page.get_by_role("alert").inner_text().startswith("Uw account bij de")
        assert "Inloggen is niet gelukt" in page.title()
        assert axe_violations(page) == []
        page.get_by_role("link", name="Terug naar inloggen").click()
        page.wait_for_url(f"{url}/signin")
        assert problems == []
        context.close()
