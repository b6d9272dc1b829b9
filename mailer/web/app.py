"""Build the subscriber pages' ASGI app: routes from the page modules, security headers, errors.

`create_web_app(app)` is what `mailer web`, `mailer run` and the tests serve (through
`App.web_app()`). Each page module provides `routes(pages) -> list[BaseRoute]`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

try:  # Starlette 1.x; older versions leave the body size to the proxy in front
    from starlette.middleware.body_limit import RequestBodyLimitMiddleware
except ImportError:  # pragma: no cover
    RequestBodyLimitMiddleware = None  # type: ignore[assignment,misc]
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailer.errors import TokenError
from mailer.web import preferences, rsvp, subscribe, unsubscribe, view
from mailer.web.csrf import CsrfError
from mailer.web.pages import TEMPLATES, Pages
from mailer.web.ratelimit import RateLimited

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["create_web_app", "PAGE_MODULES", "PAGE_CSP", "SECURITY_HEADERS"]

log = logging.getLogger("mailer.web")

#: The modules whose `routes(pages)` make up the site, in order.
PAGE_MODULES = (unsubscribe, preferences, subscribe, view, rsvp)

#: The pages load nothing but our own stylesheet and icon, and post forms only to themselves.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "x-robots-tag": "noindex, nofollow",
}

STATIC = TEMPLATES / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
MAX_BODY = 64 * 1024


class SecurityHeaders:
    """Adds the security headers to every answer; a page may set its own CSP (view online).

    Pages that carry a personal token are never cached (`no-store`); the stylesheet may be.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                extra = dict(SECURITY_HEADERS)
                extra["content-security-policy"] = PAGE_CSP
                if not static:
                    extra["cache-control"] = "no-store"
                for name, value in extra.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _static_routes() -> list[BaseRoute]:
    files = {
        path.name: (path.read_bytes(), _STATIC_TYPES[path.suffix])
        for path in sorted(Path(STATIC).iterdir())
        if path.suffix in _STATIC_TYPES
    }

    async def static(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        body, media_type = found
        return Response(
            body, media_type=media_type, headers={"cache-control": "public, max-age=86400"}
        )

    return [Route("/static/{name}", static, methods=["GET", "HEAD"])]


def _page_routes(pages: Pages) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for module in PAGE_MODULES:
        routes.extend(module.routes(pages))
    return routes


def create_web_app(app: App) -> Starlette:
    """The subscriber pages as an ASGI app, on `app`'s database and settings."""
    pages = Pages(app)

    async def home(request: Request) -> Response:
        return pages.error(request, "notfound", 404)

    async def on_token_error(request: Request, exc: Exception) -> Response:
        return pages.error(request, "link", 400, lang=getattr(request.state, "lang", None))

    async def on_csrf_error(request: Request, exc: Exception) -> Response:
        log.info("form refused: %s", exc)
        return pages.error(request, "csrf", 403, lang=getattr(request.state, "lang", None))

    async def on_rate_limited(request: Request, exc: Exception) -> Response:
        return pages.error(request, "rate", 429, lang=getattr(request.state, "lang", None))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = "notfound" if exc.status_code == 404 else "method"
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        response = pages.error(request, kind, status, lang=getattr(request.state, "lang", None))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def on_server_error(request: Request, exc: Exception) -> Response:
        log.exception("page failed: %s %s", request.method, request.url.path, exc_info=exc)
        # This answer bypasses the middleware, so it carries the headers itself.
        response = pages.error(request, "server", 500)
        response.headers.update(SECURITY_HEADERS)
        response.headers["content-security-policy"] = PAGE_CSP
        response.headers["cache-control"] = "no-store"
        return response

    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET", "HEAD"]),
        *_static_routes(),
        *_page_routes(pages),
    ]
    web = Starlette(
        routes=routes,
        exception_handlers={
            TokenError: on_token_error,
            CsrfError: on_csrf_error,
            RateLimited: on_rate_limited,
            HTTPException: on_http_error,
            Exception: on_server_error,
        },
    )
    # A trailing-slash redirect would build a Location from the request; we want none at all.
    web.router.redirect_slashes = False
    # Added last, so it wraps everything: even a refused oversized body gets the headers.
    if RequestBodyLimitMiddleware is not None:
        web.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY)
    web.add_middleware(SecurityHeaders)
    web.state.pages = pages
    return web
