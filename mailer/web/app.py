"""Build the subscriber pages' ASGI app: routes from the page modules, security headers, errors.

`create_web_app(app)` is what `mailer web`, `mailer run` and the tests serve (through
`App.web_app()`). Each page module provides `routes(pages) -> list[BaseRoute]`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

try:  # Starlette 1.x; older versions leave the body size to the proxy in front
    from starlette.middleware.body_limit import RequestBodyLimitMiddleware
except ImportError:  # pragma: no cover
    RequestBodyLimitMiddleware = None  # type: ignore[assignment,misc]
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mailer.errors import TokenError
from mailer.web import preferences, rsvp, subscribe, unsubscribe, view
from mailer.web.csrf import CsrfError
from mailer.web.headers import SecurityHeaders
from mailer.web.pages import TEMPLATES, Pages
from mailer.web.ratelimit import RateLimited

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["create_web_app", "PAGE_MODULES", "PAGE_CSP", "SECURITY_HEADERS", "HSTS",
           "loggable_path"]

log = logging.getLogger("mailer.web")
access_log = logging.getLogger("mailer.web.access")

#: The modules whose `routes(pages)` make up the site, in order.
PAGE_MODULES = (unsubscribe, preferences, subscribe, view, rsvp)

#: The pages load nothing but our own stylesheet, icon and proof-of-work script (static/pow.js),
#: and post forms only to themselves.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; "
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

#: Sent when web.base_url is https: browsers then never try the pages over plain http.
HSTS = "max-age=31536000"

STATIC = TEMPLATES / "static"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
                 ".js": "text/javascript; charset=utf-8"}
MAX_BODY = 64 * 1024


def loggable_path(path: str) -> str:
    """A request path safe for a log: no token, no address, no query (`/u/…`, `/subscribe/…`).

    Page paths carry personal tokens, and a log of them would be a list of working unsubscribe
    links; only the first segment says which page it was. The stylesheet's path is kept.
    """
    if path.startswith("/static/") and path.isprintable():
        return path
    head, _sep, rest = path.lstrip("/").partition("/")
    head = head if head.isascii() and head.isalnum() else "?"
    return f"/{head}/…" if rest else f"/{head}"


class AccessLog:
    """One line per request on the `mailer.web.access` logger (INFO), with no token or address.

    uvicorn's own access log prints the full path and query, so it stays off; this one prints
    the client address as the proxy settings believe it, the method, `loggable_path`, the status
    and the time taken.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            client = scope.get("client")
            access_log.info(
                "%s %s %s %d %.0f ms", client[0] if client else "-", scope["method"],
                loggable_path(scope["path"]), status, (time.monotonic() - started) * 1000,
            )


class RefuseNul:
    """400 for a URL with a NUL byte in it (PostgreSQL cannot store one; nothing needs one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            query = scope.get("query_string", b"")
            if b"\x00" in scope["path"].encode("utf-8", "surrogateescape") or \
                    b"\x00" in unquote_to_bytes(raw) or b"\x00" in unquote_to_bytes(query):
                await PlainTextResponse("Bad request\n", status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)


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


#: An uploaded image never changes under its random name: mail clients and proxies may keep it.
MEDIA_HEADERS = {
    "cache-control": "public, max-age=31536000, immutable",
    # Webmail shows it from its own origin; the file is an image and nothing else.
    "cross-origin-resource-policy": "cross-origin",
    "content-security-policy": "default-src 'none'; sandbox",
}


def _media_routes(app: App) -> list[BaseRoute]:
    """The newsletter images uploaded in the console (mailer.usecases.media): only names the
    upload made (random hex and a known extension), each with its own image type."""
    from mailer.usecases.media import MEDIA_TYPES, media_file

    async def media(request: Request) -> Response:
        name = request.path_params["name"]
        path = media_file(app.settings, name)
        if path is None:
            raise HTTPException(404)
        return FileResponse(path, media_type=MEDIA_TYPES[name.rsplit(".", 1)[1]],
                            headers=MEDIA_HEADERS)

    return [Route("/media/{name}", media, methods=["GET", "HEAD"])]


def _page_routes(pages: Pages) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for module in PAGE_MODULES:
        routes.extend(module.routes(pages))
    return routes


def create_web_app(app: App) -> Starlette:
    """The subscriber pages as an ASGI app, on `app`'s database and settings."""
    pages = Pages(app)
    web_settings = app.settings.web
    https = web_settings.base_url.startswith("https://")

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
        log.exception("page failed: %s %s", request.method, loggable_path(request.url.path),
                      exc_info=exc)
        # This answer bypasses the middleware, so it carries the headers itself.
        response = pages.error(request, "server", 500)
        response.headers.update(SECURITY_HEADERS)
        response.headers["content-security-policy"] = PAGE_CSP
        response.headers["cache-control"] = "no-store"
        if https:
            response.headers["strict-transport-security"] = HSTS
        return response

    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET", "HEAD"]),
        *_static_routes(),
        *_media_routes(app),
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
    # Each add_middleware wraps what was added before it. Only the host in base_url is served:
    # a page reached under another name (DNS rebinding, a stray vhost) is refused with a 400.
    host = urlsplit(web_settings.base_url).hostname or ""
    web.add_middleware(TrustedHostMiddleware, allowed_hosts=[host], www_redirect=False)
    if RequestBodyLimitMiddleware is not None:
        web.add_middleware(RequestBodyLimitMiddleware, max_body_size=MAX_BODY)
    web.add_middleware(RefuseNul)
    # Wraps the above, so even a refused host, URL or oversized body gets the headers.
    headers = {**SECURITY_HEADERS, "content-security-policy": PAGE_CSP}
    if https:
        headers["strict-transport-security"] = HSTS
    web.add_middleware(SecurityHeaders, headers=headers)
    web.add_middleware(AccessLog)
    if web_settings.trusted_proxies:
        # uvicorn's own proxy-header middleware, trusting only the configured proxies: their
        # X-Forwarded-For becomes the client address (rate limits, consent records, the log);
        # from anyone else the header is ignored.
        web.add_middleware(ProxyHeadersMiddleware,
                           trusted_hosts=list(web_settings.trusted_proxies))
    web.state.pages = pages
    return web
