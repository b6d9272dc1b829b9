"""Build the staff console's ASGI app: its routes, security headers, error pages.

Every route must be a ConsoleRoute naming its permission; `create_console_app` refuses any
other, so an unguarded page cannot be added by mistake (tests/test_console_routes.py walks all
of them for every role).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailer.accounts.roles import PUBLIC
from mailer.console import account, audit, calendar, campaigns, home, signin, users
from mailer.console.base import Console, ConsoleRoute

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

ROUTE_MODULES = (signin, home, account, campaigns, calendar, users, audit)


class SecurityHeaders:
    """The headers above on every answer; pages are never cached, static files may be."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = dict(HEADERS)
                if not static:
                    extra["cache-control"] = "no-store"
                headers += [(k.encode(), v.encode()) for k, v in extra.items()
                            if k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


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
    web.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY)
    web.add_middleware(SecurityHeaders)
    web.state.console = console
    return web
