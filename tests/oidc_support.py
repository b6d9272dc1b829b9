"""A real OpenID Connect provider on loopback (oidc-provider-mock) and the console beside it.

The provider is the package's Flask app, served by werkzeug from a thread on a free 127.0.0.1
port; its issuer is that address. A test chooses who signs in: it stores the claims of a
subject (`PUT /users/<sub>`: email, groups, ...) and then submits the provider's authorization
form with that `sub`, as a person would click "Authorize". The ID token is signed with the
provider's key and carries the chosen claims besides sub, iss, aud, exp, iat and nonce.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import werkzeug.serving

from mailer.app import App, build_app
from mailer.settings import OidcSettings, Settings

CLIENT_ID = "gt-mailer-console"
CLIENT_SECRET = "provider-secret-0123456789"
#: Group object ids as Entra ID sends them, mapped to roles.
GROUPS = {
    "viewer": "11111111-0000-4000-8000-000000000001",
    "editor": "11111111-0000-4000-8000-000000000002",
    "approver": "11111111-0000-4000-8000-000000000003",
    "admin": "11111111-0000-4000-8000-000000000004",
}
UNMAPPED = "99999999-0000-4000-8000-000000000009"


@contextmanager
def provider_served(*, require_nonce: bool = True) -> Iterator[str]:
    """The provider on a free loopback port; its issuer URL."""
    flask_app = oidc_provider_mock.app(require_nonce=require_nonce)
    server = werkzeug.serving.make_server("127.0.0.1", 0, flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=15)
        server.server_close()


def set_user(issuer: str, sub: str, **claims: Any) -> None:
    """What the provider will say about `sub` (standard claims only with their scope)."""
    response = httpx.put(f"{issuer}/users/{sub}", json=claims, timeout=10)
    assert response.status_code == 204, response.text


def oidc_settings(settings: Settings, issuer: str, base_url: str, **changes: Any) -> Settings:
    """`settings` with the console at `base_url` and sign-in through `issuer` turned on."""
    console_changes = {k: changes.pop(k) for k in list(changes)
                       if k in {f.name for f in dataclasses.fields(settings.console)}}
    oidc = OidcSettings(enabled=True, issuer=issuer, client_id=CLIENT_ID,
                        client_secret=CLIENT_SECRET,
                        roles={group: role for role, group in GROUPS.items()})
    oidc = dataclasses.replace(oidc, **changes)
    return dataclasses.replace(settings, console=dataclasses.replace(
        settings.console, base_url=base_url, oidc=oidc, **console_changes))


def bind_loopback() -> socket.socket:
    from mailer.web.server import bind

    return bind("127.0.0.1", 0)


@contextmanager
def console_on(app: App, sock: socket.socket) -> Iterator[None]:
    """The console served on `sock` (bound before the settings named its address)."""
    from mailer.console.server import serve

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(app, sock, stop),),
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
        loop.close()
        sock.close()


@contextmanager
def console_with_oidc(settings: Settings, issuer: str, *, host: str = "127.0.0.1",
                      **changes: Any) -> Iterator[tuple[App, str]]:
    """An app whose console signs in through `issuer`, served on loopback; (app, its URL)."""
    sock = bind_loopback()
    url = f"http://{host}:{sock.getsockname()[1]}"
    app = build_app(oidc_settings(settings, issuer, url, **changes))
    try:
        with console_on(app, sock):
            yield app, url
    finally:
        app.close()


@dataclasses.dataclass
class Trip:
    """One sign-in's way out and back, for tests that tamper with a step."""

    authorize: str  # the provider's authorization URL the console sent the browser to
    callback: str = ""  # where the provider sent it back (code and state)

    @property
    def params(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.authorize).query).items()}

    @property
    def returned(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.callback).query).items()}


def start(browser: httpx.Client, console: str) -> Trip:
    response = browser.get(f"{console}/signin/oidc")
    assert response.status_code == 302, response.text
    return Trip(authorize=response.headers["location"])


def authorize(browser: httpx.Client, trip: Trip, sub: str) -> Trip:
    """Submit the provider's form for `sub`: the provider redirects back with a code."""
    form = browser.get(trip.authorize)
    assert form.status_code == 200 and 'name="sub"' in form.text, form.text
    response = browser.post(trip.authorize, data={"sub": sub})
    assert response.status_code == 302, response.text
    trip.callback = response.headers["location"]
    return trip


def sign_in(browser: httpx.Client, console: str, sub: str) -> httpx.Response:
    """The whole way: the console's button, the provider's form, the callback's answer."""
    trip = authorize(browser, start(browser, console), sub)
    return browser.get(trip.callback)


def browser_client() -> httpx.Client:
    """A client that keeps cookies and follows no redirect by itself (each step is checked)."""
    return httpx.Client(follow_redirects=False, timeout=20)
