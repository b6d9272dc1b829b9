"""Build the staff console's ASGI app: its routes, security headers, error pages.

Every route must be a ConsoleRoute naming its permission; `create_console_app` refuses any
other, so an unguarded page cannot be added by mistake (tests/test_console_routes.py walks all
of them for every role).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from mailer.accounts.roles import PUBLIC
from mailer.console import (
    account,
    audit,
    bounces,
    calendar,
    campaigns,
    events,
    home,
    imports,
    lists,
    oidc,
    people,
    signin,
    users,
)
from mailer.console.base import Console, ConsoleRoute
from mailer.web.app import RefuseNul
from mailer.web.headers import SecurityHeaders

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["create_console_app", "CONSOLE_CSP", "STATIC"]

log = logging.getLogger("mailer.console")

#: Our own scripts only (htmx, vendored), no inline script or style, no other site.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'self'"
)
HEADERS = {
    "content-security-policy": CONSOLE_CSP,
    "x-frame-options": "SAMEORIGIN",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "x-robots-tag": "noindex, nofollow",
}
STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}
#: Room for an image upload; everything else is a small form.
MAX_BODY = 6 * 1024 * 1024

# imports before people: /subscribers/import before /subscribers/{id}
ROUTE_MODULES = (signin, oidc, home, account, campaigns, calendar, events, users, audit, lists,
                 bounces, imports, people)
#: Larger bodies only where a file is uploaded (a subscriber CSV), nowhere else.
LARGE_BODY = {imports.UPLOAD_PATH: imports.MAX_UPLOAD}


class BodyLimit:
    """MAX_BODY for every request, except the few paths in LARGE_BODY (exact match)."""

    def __init__(self, app: ASGIApp) -> None:
        self.small = RequestBodyLimitMiddleware(app, max_body_size=MAX_BODY)
        self.large = {path: RequestBodyLimitMiddleware(app, max_body_size=size)
                      for path, size in LARGE_BODY.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.large.get(scope["path"], self.small) if scope["type"] == "http" \
            else self.small
        await chosen(scope, receive, send)


HSTS = "max-age=31536000"


def _static_route(console: Console) -> ConsoleRoute:
    files = {
        str(path.relative_to(STATIC)): (path.read_bytes(), _TYPES[path.suffix])
        for path in sorted(STATIC.rglob("*")) if path.is_file() and path.suffix in _TYPES
    }

    async def static(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        body, media_type = found
        return Response(body, media_type=media_type,
                        headers={"cache-control": "public, max-age=3600"})

    return ConsoleRoute("/static/{name:path}", static, permission=PUBLIC, console=console)


def create_console_app(app: App) -> Starlette:
    """The staff console as an ASGI app, on `app`'s database and settings."""
    console = Console(app)
    routes: list[BaseRoute] = [_static_route(console)]
    for module in ROUTE_MODULES:
        routes.extend(module.routes(console))
    for route in routes:
        if not isinstance(route, ConsoleRoute):
            raise TypeError(f"console route {route!r} does not name a permission")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "notfound" if exc.status_code == 404 else "method"
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        return console.error(request, kind, status)

    async def on_server_error(request: Request, exc: Exception) -> Response:
        log.exception("console page failed: %s %s", request.method, request.url.path,
                      exc_info=exc)
        response = console.error(request, "server", 500)
        response.headers.update(HEADERS)
        response.headers["cache-control"] = "no-store"
        return response

    web = Starlette(routes=routes, exception_handlers={
        HTTPException: on_http_error, Exception: on_server_error})
    web.router.redirect_slashes = False
    # As the subscriber pages: only the console.base_url host is served (a page reached under
    # another name, as by DNS rebinding from a staff member's browser, is a 400), and a NUL in
    # the URL is a 400 before it reaches PostgreSQL.
    host = urlsplit(app.settings.console.base_url).hostname or ""
    web.add_middleware(TrustedHostMiddleware, allowed_hosts=[host], www_redirect=False)
    web.add_middleware(BodyLimit)
    web.add_middleware(RefuseNul)
    web.add_middleware(SecurityHeaders, headers={
        **HEADERS, **({"strict-transport-security": HSTS} if console.secure else {})})
    web.state.console = console
    return web
