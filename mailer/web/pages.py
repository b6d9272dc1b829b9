"""What every subscriber page shares: templates, language choice, signed links, CSRF, database.

Route modules (unsubscribe, preferences, subscribe, view, and the RSVP page) get one `Pages`
object and use it to decode a link's token, run database work off the event loop, check a
form's CSRF token and render a page in the person's language with the common layout.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import jinja2
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from mailer.database.connect import session_scope
from mailer.errors import TokenError
from mailer.web.csrf import FIELD, Csrf
from mailer.web.mail import Mail, send_mail
from mailer.web.ratelimit import RateLimiter
from mailer.web.texts import LANGUAGES, text

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["Pages", "TEMPLATES", "TokenPayload"]

#: The shipped page templates; settings.templates.override_dir/web/ may override any of them.
TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "web"

P = ParamSpec("P")
T = TypeVar("T")

TokenPayload = dict[str, Any]


class Pages:
    """The shared parts of the subscriber pages, built once per web app."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings
        self.links = app.links
        self.csrf = Csrf(app.settings.secret_key, app.settings.web.base_url)
        self.rate = RateLimiter(app.settings.secret_key)
        loaders: list[jinja2.BaseLoader] = []
        if app.settings.templates.override_dir:
            override = app.settings.resolve_path(app.settings.templates.override_dir) / "web"
            loaders.append(jinja2.FileSystemLoader(str(override)))
        loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- database ----------------------------------------------------------------------------

    async def db(self, fn: Callable[Concatenate[Session, P], T], *args: P.args,
                 **kwargs: P.kwargs) -> T:
        """Run `fn(session, ...)` in one transaction on a worker thread (the loop stays free).

        Return plain values, not ORM objects: the session is closed when this returns.
        """

        def work() -> T:
            with session_scope(self.app.sessions) as session:
                return fn(session, *args, **kwargs)

        return await run_in_threadpool(work)

    # -- tokens ------------------------------------------------------------------------------

    def unsign(
        self, purpose: str, token: str, *, max_age: dt.timedelta | None = None,
        ints: tuple[str, ...] = ("s",),
    ) -> TokenPayload:
        """The payload of a link's token; TokenError (a friendly 400 page) if it is not valid.

        `ints` names payload keys that must be whole numbers (ids), checked here once.
        """
        payload = self.app.signer.unsign(purpose, token, max_age=max_age)
        for key in ints:
            value = payload.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TokenError("the link is not valid")
        return payload

    # -- language ----------------------------------------------------------------------------

    @staticmethod
    def language(request: Request, preferred: str | None = None) -> str:
        """The page language: the person's own if known, else ?lang=, else the browser's."""
        if preferred in LANGUAGES:
            return preferred
        asked = request.query_params.get("lang", "")
        if asked in LANGUAGES:
            return asked
        best, best_q = "nl", 0.0
        for part in request.headers.get("accept-language", "").split(","):
            tag, _, params = part.strip().partition(";")
            primary = tag.strip().lower().split("-", 1)[0]
            if primary not in LANGUAGES:
                continue
            q = 1.0
            if params.strip().startswith("q="):
                try:
                    q = float(params.strip()[2:])
                except ValueError:
                    q = 0.0
            if q > best_q:
                best, best_q = primary, q
        return best

    @staticmethod
    def client_address(request: Request) -> str:
        """The client's address (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
        return request.client.host if request.client else "unknown"

    # -- forms -------------------------------------------------------------------------------

    async def form(self, request: Request) -> FormData:
        """The posted form, after its CSRF check (CsrfError gives a friendly 403 page)."""
        form = await request.form(max_files=0, max_fields=100)
        self.csrf.check(request, form.get(FIELD))
        return form

    # -- responses ---------------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        lang: str,
        status: int = 200,
        mails: list[Mail] | None = None,
        switch_language: bool = False,
    ) -> HTMLResponse:
        """A page in `lang` with the common layout; `mails` are sent after the answer.

        Every page gets `t(key, **values)`, `lang`, `csrf_field` (for its forms, bound to this
        path) and `other_language_url` (when `switch_language`: public pages only, as pages of
        a known person follow that person's language).
        """
        cookie, new_cookie = self.csrf.cookie_value(request)
        other = "en" if lang == "nl" else "nl"
        values = {
            "lang": lang,
            "t": lambda key, **kw: text(lang, key, **kw),
            "csrf_field": FIELD,
            "csrf_token": self.csrf.token(cookie, request.url.path),
            "other_language_url": f"{request.url.path}?lang={other}" if switch_language else "",
            "path": request.url.path,
            **(context or {}),
        }
        html = self.env.get_template(template).render(values)
        task = None
        if mails:
            task = BackgroundTask(self.send_all, list(mails))
        response = HTMLResponse(html, status_code=status, background=task)
        if new_cookie:
            self.csrf.set_cookie(response, cookie)
        return response

    def send_all(self, mails: list[Mail]) -> None:
        """Send mails one after the other (run as a background task, after the answer)."""
        for mail in mails:
            send_mail(self.app, mail)

    def error(self, request: Request, kind: str, status: int, *, lang: str | None = None
              ) -> HTMLResponse:
        """The friendly page for a failure: link, csrf, rate, notfound, method or server."""
        return self.render(
            request, "error.html", {"kind": kind},
            lang=lang or self.language(request), status=status,
        )

    @staticmethod
    def see_other(request: Request, query: str = "") -> RedirectResponse:
        """Post/redirect/get back to the page itself: never to a URL the request names."""
        return RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
