"""Helpers for the console tests: accounts made through the use cases, signing in, forms."""

from __future__ import annotations

import asyncio
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyotp

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from mailer.accounts.models import ConsoleUser
from mailer.app import App
from mailer.audit import Actor
from mailer.console.app import create_console_app
from mailer.database.connect import session_scope
from mailer.usecases import users

#: The console's address in tests (its default base_url).
CONSOLE = "http://127.0.0.1:8026"
PASSWORD = "correct horse battery staple"
ROLES = ("viewer", "editor", "approver", "admin")
SETUP_ACTOR = Actor(name="os:tests", origin="cli")
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Account:
    email: str
    role: str
    password: str
    totp_secret: str

    def code(self, offset: int = 0) -> str:
        """The TOTP code of now (+ offset steps)."""
        totp = pyotp.TOTP(self.totp_secret)
        return totp.at(int(__import__("time").time()) + 30 * offset)


def make_account(app: App, email: str, role: str, *, totp: bool = True) -> Account:
    """An account set up through its link as a person would (password, and TOTP if asked)."""
    secret = pyotp.random_base32() if totp else ""
    with session_scope(app.sessions) as session:
        _user, link = users.add_user(session, app.settings, SETUP_ACTOR, email, role)
        token = link.rsplit("/", 1)[1]
        # The code of the step before now, so the tests' sign-ins can use the current one.
        code = pyotp.TOTP(secret).at(int(__import__("time").time()) - 30) if totp else ""
        users.complete_setup(session, token, PASSWORD, totp_secret=secret, totp_code=code,
                             origin="tests")
    return Account(email, role, PASSWORD, secret)


def forget_used_codes(app: App, email: str) -> None:
    """Let a test sign the same account in again within one 30-second TOTP step."""
    with session_scope(app.sessions) as session:
        user = session.query(ConsoleUser).filter_by(email=email).one()
        user.totp_last_step = 0


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def console_client(app: App) -> TestClient:
    return TestClient(create_console_app(app), base_url=CONSOLE, follow_redirects=False)


def sign_in(client: TestClient, account: Account, *, offset: int = 0) -> None:
    """Sign in through the forms (password, then the code when there is one)."""
    page = client.get("/signin")
    response = client.post("/signin", data={
        "csrf": csrf_token(page.text), "email": account.email, "password": account.password})
    assert response.status_code == 303, response.text
    if response.headers["location"] == "/signin/code":
        page = client.get("/signin/code")
        response = client.post("/signin/code", data={
            "csrf": csrf_token(page.text), "code": account.code(offset)})
        assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"


def post(client: TestClient, page_path: str, action: str, data: dict[str, str]) -> object:
    """Post a form of `page_path` to `action` with the page's CSRF token."""
    page = client.get(page_path)
    return client.post(action, data={"csrf": csrf_token(page.text), **data})


AXE = Path(__file__).parent / "vendor" / "axe-4.10.3.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page: object) -> list[str]:
    """WCAG 2.1 A/AA violations axe-core finds on the page (axe injected by the test, never
    shipped: evaluated through the browser's debugging channel, so the page's CSP stays)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):  # type: ignore[attr-defined]
        page.evaluate(AXE.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    result = page.evaluate(  # type: ignore[attr-defined]
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))",
        WCAG_AA)
    return list(result)


@contextmanager
def console_served(app: App) -> Iterator[str]:
    """The console served on a free loopback port from its own thread; its base URL."""
    from mailer.console.server import serve
    from mailer.web.server import bind

    sock = bind("127.0.0.1", 0)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(app, sock, stop),),
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
        loop.close()
        sock.close()
