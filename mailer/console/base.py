"""What every console page shares: routes that name a permission, sign-in state, CSRF, render.

`ConsoleRoute(path, endpoint, permission=...)` wraps the endpoint so that, before it runs, the
session cookie is resolved (idle and absolute timeouts), the permission is checked (anonymous:
to the sign-in page; signed in without the role: 403) and every POST's CSRF token is checked.
An endpoint therefore cannot forget any of the three.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import jinja2
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from mailer.accounts import service as accounts
from mailer.accounts.roles import ALL, PUBLIC, allowed
from mailer.audit import Actor
from mailer.console.texts import LANGUAGES, text
from mailer.database.connect import session_scope
from mailer.kernel.keys import derive
from mailer.usecases.users import policy

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["Console", "ConsoleRoute", "Who", "TEMPLATES", "SESSION_COOKIE", "CsrfRefused"]

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "console"
SESSION_COOKIE = "gt_console"
PRE_COOKIE = "gt_console_pre"
LANG_COOKIE = "gt_console_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

P = ParamSpec("P")
T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]


class CsrfRefused(Exception):
    """A post without this browser's form token, or from another site."""


@dataclass(frozen=True)
class Who:
    """The person behind a request: a full session, a half one (code owed), or nobody."""

    user_id: int | None = None
    email: str = ""
    name: str = ""
    role: str | None = None
    stage: str = ""  # "full", "totp" (password right, code owed) or "" (no session)
    csrf: str = ""
    token: str = ""

    @property
    def signed_in(self) -> bool:
        return self.stage == "full"

    def actor(self, request: Request) -> Actor:
        return Actor(name=self.email, user_id=self.user_id, role=self.role or "",
                     origin=f"console {Console.client(request)}")


class Console:
    """The shared parts of the console, built once per app."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings
        self.policy = policy(app.settings)
        # The staff sessions' own key (HKDF, kernel.keys), like every other purpose's.
        self._key = derive(app.settings.secret_key, "sessions")
        self.secure = app.settings.console.base_url.startswith("https://")
        self.origin = _origin(app.settings.console.base_url)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Times as staff read them: in the settings' time zone ("2026-12-01 09:00").
        self.env.filters["local"] = lambda when, fmt="%Y-%m-%d %H:%M": (
            when.astimezone(app.settings.tz).strftime(fmt) if when else "")

    # -- database ----------------------------------------------------------------------------

    async def db(self, fn: Callable[Concatenate[Session, P], T], *args: P.args,
                 **kwargs: P.kwargs) -> T:
        """Run `fn(session, ...)` in one transaction on a worker thread; return plain values."""

        def work() -> T:
            with session_scope(self.app.sessions) as session:
                return fn(session, *args, **kwargs)

        return await run_in_threadpool(work)

    # -- who is asking -----------------------------------------------------------------------

    async def who(self, request: Request) -> Who:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            return Who()

        def load(session: Session) -> Who:
            found = accounts.load_session(session, token, policy=self.policy)
            if found is None:
                return Who()
            cs, user = found
            return Who(user_id=user.id, email=user.email, name=user.name, role=user.role,
                       stage=cs.stage, csrf=cs.csrf, token=token)

        return await self.db(load)

    @staticmethod
    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    # -- CSRF --------------------------------------------------------------------------------

    def csrf_token(self, basis: str) -> str:
        return hmac.new(self._key, basis.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, who: Who, submitted: object) -> None:
        if request.headers.get("sec-fetch-site", "") == "cross-site":
            raise CsrfRefused("cross-site post")
        origin = request.headers.get("origin")
        if origin and origin != "null":
            own = f"{request.url.scheme}://{request.url.netloc}".lower()
            if origin.lower() not in (self.origin, own):
                raise CsrfRefused("post from another origin")
        basis = who.csrf or request.cookies.get(PRE_COOKIE, "")
        if len(basis) < 32 or not isinstance(submitted, str):
            raise CsrfRefused("missing form token")
        if not hmac.compare_digest(self.csrf_token(basis), submitted):
            raise CsrfRefused("form token does not match")

    # -- language ----------------------------------------------------------------------------

    @staticmethod
    def language(request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE, "")
        if chosen in LANGUAGES:
            return chosen
        for part in request.headers.get("accept-language", "").split(","):
            primary = part.strip().split(";", 1)[0].lower().split("-", 1)[0]
            if primary in LANGUAGES:
                return primary
        return "nl"

    # -- responses ---------------------------------------------------------------------------

    def render(self, request: Request, template: str, context: Mapping[str, Any] | None = None,
               *, status: int = 200) -> HTMLResponse:
        """A page with the console layout. Every page gets `t`, `lang`, `who`, `can`, CSRF."""
        who: Who = getattr(request.state, "who", Who())
        lang = self.language(request)
        basis = who.csrf or getattr(request.state, "pre_cookie", "") or request.cookies.get(
            PRE_COOKIE, "")
        new_pre = ""
        if not basis:
            basis = new_pre = secrets.token_urlsafe(32)
        values = {
            "lang": lang,
            "t": lambda key, **kw: text(lang, key, **kw),
            "who": who,
            "can": lambda permission: allowed(who.role if who.signed_in else None, permission),
            "csrf_field": CSRF_FIELD,
            "csrf_token": self.csrf_token(basis),
            "path": request.url.path,
            "tz": self.settings.timezone,
            **(context or {}),
        }
        response = HTMLResponse(self.env.get_template(template).render(values),
                                status_code=status)
        if new_pre:
            response.set_cookie(PRE_COOKIE, new_pre, httponly=True, samesite="strict",
                                secure=self.secure, path="/")
        return response

    def error(self, request: Request, kind: str, status: int) -> HTMLResponse:
        return self.render(request, "error.html", {"kind": kind}, status=status)

    def set_session(self, response: Response, token: str) -> None:
        # No max-age: the cookie ends with the browser; the server ends the session anyway.
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                            secure=self.secure, path="/")

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self.secure)

    @staticmethod
    def redirect(path: str) -> RedirectResponse:
        """Post/redirect/get to one of our own paths (never a URL taken from the request)."""
        assert path.startswith("/") and not path.startswith("//")
        return RedirectResponse(path, 303)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class ConsoleRoute(Route):
    """A route that names the permission it needs; the endpoint runs only when it is met."""

    def __init__(self, path: str, endpoint: Endpoint, *, permission: str, console: Console,
                 methods: list[str] | None = None, name: str | None = None) -> None:
        if permission not in ALL:
            raise ValueError(f"{path}: unknown permission {permission!r}")
        self.permission = permission
        super().__init__(path, _guard(endpoint, permission, console),
                         methods=methods or ["GET"], name=name or endpoint.__name__)


def _guard(endpoint: Endpoint, permission: str, console: Console) -> Endpoint:
    async def guarded(request: Request) -> Response:
        who = await console.who(request)
        request.state.who = who
        role = who.role if who.signed_in else None
        if not allowed(role, permission):
            if role is None:
                if request.method in ("GET", "HEAD") and not request.headers.get("hx-request"):
                    return console.redirect("/signin")
                return console.error(request, "signin", 401)
            return console.error(request, "forbidden", 403)
        if request.method == "POST":
            form: FormData = await request.form(max_files=1, max_fields=200)
            submitted = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
            try:
                console.check_csrf(request, who, submitted)
            except CsrfRefused:
                return console.error(request, "csrf", 403)
            # PostgreSQL cannot store a NUL (a 500 at the first query); no field needs one.
            if any(isinstance(v, str) and "\x00" in v for _k, v in form.multi_items()):
                return console.error(request, "method", 400)
        return await endpoint(request)

    guarded.__name__ = endpoint.__name__
    guarded.__doc__ = endpoint.__doc__
    return guarded


__all__ += ["PUBLIC", "CSRF_FIELD", "CSRF_HEADER", "LANG_COOKIE", "PRE_COOKIE"]
