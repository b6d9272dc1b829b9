"""Every route of the console, for every role and for an anonymous client.

The walk takes the routes from the app itself, so a new route is checked the day it is added:
it must name a permission (the app refuses to start otherwise), only the routes listed in
PUBLIC_ROUTES may be open to anyone, and each role gets exactly what its permissions say.
"""

from __future__ import annotations

import re
import uuid
import warnings

import pytest
from console_support import CONSOLE, ROLES, csrf_token

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from mailer.accounts import service as accounts
from mailer.accounts.roles import PUBLIC, allowed
from mailer.app import App
from mailer.audit import Actor
from mailer.campaigns.models import Campaign
from mailer.console.app import create_console_app
from mailer.console.base import ConsoleRoute
from mailer.database.connect import session_scope
from mailer.usecases import users

#: The only routes anyone may reach without signing in.
PUBLIC_ROUTES = {
    ("/static/{name:path}", "GET"), ("/signin", "GET"), ("/signin", "POST"),
    ("/signin/code", "GET"), ("/signin/code", "POST"), ("/setup/{token}", "GET"),
    ("/setup/{token}", "POST"), ("/lang/{code}", "GET"),
    ("/signin/oidc", "GET"), ("/signin/oidc/callback", "GET"),
}
PARAMS = {"campaign_id": "{campaign}", "token": "not-a-token", "name": "console.css",
          "code": "en",
          "slug": "nieuwsbrief", "bounce_id": "1", "event_id": "{campaign}",
          "public_id": "nobody", "upload": "no-upload"}


def _every_route(app: App) -> list[tuple[str, str, str]]:
    found = []
    for route in create_console_app(app).routes:
        assert isinstance(route, ConsoleRoute), f"{route} names no permission"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((route.path, method, route.permission))
    return found


def _concrete(path: str, campaign: int) -> str:
    def fill(match: re.Match[str]) -> str:
        return PARAMS[match.group(1)].format(campaign=campaign)

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)


def _session_cookie(app: App, role: str) -> str:
    """A fresh full session of a new account with `role` (the sign-in itself is tested in
    test_console_accounts.py; here each request needs its own session, as some end it)."""
    with session_scope(app.sessions) as session:
        user, _ = users.add_user(session, app.settings, Actor(name="os:tests"),
                                 f"{role}-{uuid.uuid4().hex[:8]}@gt.example.nl", role)
        return accounts.start_session(session, user)


def test_only_the_listed_routes_are_public(app: App):
    public = {(path, method) for path, method, perm in _every_route(app) if perm == PUBLIC}
    assert public == PUBLIC_ROUTES


@pytest.mark.parametrize("role", [None, *ROLES])
def test_every_route_answers_as_its_permission_says(app: App, role: str | None):
    with session_scope(app.sessions) as session:
        campaign = Campaign(subject="Nieuws", audience={"lists": []})
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    checked = 0
    web = create_console_app(app)
    for path, method, permission in _every_route(app):
        client = TestClient(web, base_url=CONSOLE, follow_redirects=False)
        if role is not None:
            client.cookies.set("gt_console", _session_cookie(app, role), domain="127.0.0.1")
        url = _concrete(path, campaign_id)
        token = csrf_token(client.get("/signin" if role is None else "/account").text)
        response = client.request(method, url, data={"csrf": token} if method == "POST" else None)
        where = f"{method} {path} as {role or 'anonymous'}"
        if allowed(role, permission):
            assert response.status_code not in (401, 403), where
            assert response.headers.get("location") != "/signin" or path.startswith(
                ("/signin", "/signout")), where
            assert response.status_code < 500, where
        elif role is None:
            expected = 303 if method == "GET" else 401
            assert response.status_code == expected, where
            if method == "GET":
                assert response.headers["location"] == "/signin", where
        else:
            assert response.status_code == 403, where
        checked += 1
    assert checked >= 20


def test_a_route_without_a_permission_is_refused(app: App, monkeypatch: pytest.MonkeyPatch):
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from mailer.console import account

    original = account.routes

    def with_open_route(console):  # type: ignore[no-untyped-def]
        return [*original(console), Route("/open", lambda r: PlainTextResponse("x"))]

    monkeypatch.setattr(account, "routes", with_open_route)
    with pytest.raises(TypeError, match="does not name a permission"):
        create_console_app(app)
