"""Signing in and out: password, then the TOTP code when the account has one; set-up links.

Every sign-in starts a new session (the old cookie's session is ended: rotation), and a
half-signed-in session (code still owed) can do nothing but enter its code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import segno
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.accounts import service as accounts
from mailer.accounts.roles import PUBLIC, SIGNED_IN
from mailer.console.base import LANG_COOKIE, Console, ConsoleRoute, Who
from mailer.console.texts import LANGUAGES
from mailer.errors import AccountError
from mailer.usecases import users
from mailer.web.ratelimit import Limit, RateLimited, RateLimiter

__all__ = ["routes"]

SIGNIN_WINDOW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class _Outcome:
    token: str = ""
    stage: str = ""
    error: str = ""


class _SignIn:
    """The endpoints, sharing the console and its settings."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.settings = self.console.settings
        self.limiter = RateLimiter(self.settings.secret_key, window=SIGNIN_WINDOW)

    def origin(self, request: Request) -> str:
        return f"console {self.console.client(request)}"

    def rate_limit(self, session: Session, request: Request) -> None:
        self.limiter.hit(session, [Limit("console-signin", self.console.client(request),
                                    self.settings.console.signin_rate_per_client)])

    async def signin_page(self, request: Request) -> Response:
        who: Who = request.state.who
        if who.signed_in:
            return self.console.redirect("/")
        done = request.query_params.get("done") == "setup"
        return self.page(request, error="", email="", done=done)

    def page(self, request: Request, *, error: str, email: str, done: bool,
             status: int = 200) -> Response:
        """The sign-in page: the provider's button when OpenID Connect is on, and the password
        form unless it is turned off."""
        oidc = self.settings.console.oidc
        return self.console.render(request, "signin.html", {
            "error": error, "email": email, "done": done,
            "oidc_label": oidc.label if oidc.enabled else "",
            "password_signin": oidc.password_signin}, status=status)

    async def signin(self, request: Request) -> Response:
        if not self.settings.console.oidc.password_signin:
            return self.console.error(request, "notfound", 404)
        form = await request.form()
        email = str(form.get("email", ""))[:320]
        password = str(form.get("password", ""))[:1000]
        old = request.cookies.get("gt_console", "")

        def work(session: Session) -> _Outcome:
            try:
                self.rate_limit(session, request)
            except RateLimited:
                return _Outcome(error="rate")
            try:
                _user, token, stage = users.sign_in(
                    session, self.settings, email, password, origin=self.origin(request),
                    client=self.console.client(request),
                    user_agent=request.headers.get("user-agent", ""), replaces=old or None)
            except accounts.SignInFailed:
                return _Outcome(error="signin")
            return _Outcome(token=token, stage=stage)

        outcome = await self.console.db(work)
        if outcome.error:
            status = 429 if outcome.error == "rate" else 400
            return self.page(request, error=outcome.error, email=email, done=False,
                             status=status)
        response = self.console.redirect("/signin/code" if outcome.stage == "totp" else "/")
        self.console.set_session(response, outcome.token)
        return response

    async def code_page(self, request: Request) -> Response:
        who: Who = request.state.who
        if who.stage != "totp":
            return self.console.redirect("/" if who.signed_in else "/signin")
        return self.console.render(request, "code.html", {"error": ""})

    async def code(self, request: Request) -> Response:
        who: Who = request.state.who
        if who.stage != "totp" or who.user_id is None:
            return self.console.redirect("/signin")
        form = await request.form()
        value = str(form.get("code", ""))[:20]
        user_id = who.user_id

        def work(session: Session) -> _Outcome:
            try:
                self.rate_limit(session, request)
            except RateLimited:
                return _Outcome(error="rate")
            user = accounts.queries.user_by_id(session, user_id)
            assert user is not None
            try:
                token = users.second_factor(
                    session, self.settings, user, value, origin=self.origin(request),
                    client=self.console.client(request),
                    user_agent=request.headers.get("user-agent", ""), replaces=who.token,
                    method=who.method or "password")
            except accounts.SignInFailed:
                return _Outcome(error="code")
            return _Outcome(token=token, stage="full")

        outcome = await self.console.db(work)
        if outcome.error:
            return self.console.render(request, "code.html", {"error": outcome.error},
                                  status=429 if outcome.error == "rate" else 400)
        response = self.console.redirect("/")
        self.console.set_session(response, outcome.token)
        return response

    def _setup_context(self, email: str, role: str, secret: str, error: str) -> dict[str, object]:
        uri = accounts.totp_uri(secret, email)
        qr = segno.make(uri, error="m").svg_data_uri(scale=4, dark="#0b2748")
        return {"email": email, "role": role, "secret": secret, "qr": qr, "error": error,
                "min_password": accounts.MIN_PASSWORD}

    async def setup_page(self, request: Request) -> Response:
        token = request.path_params["token"]

        def work(session: Session) -> tuple[str, str] | None:
            try:
                user = accounts.user_for_setup(session, token)
            except AccountError:
                return None
            return user.email, user.role

        found = await self.console.db(work)
        if found is None:
            return self.console.error(request, "setup", 400)
        return self.console.render(request, "setup.html",
                              self._setup_context(*found, accounts.new_totp_secret(), ""))

    async def setup(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await request.form()
        password = str(form.get("password", ""))[:1000]
        repeat = str(form.get("password2", ""))[:1000]
        secret = str(form.get("secret", ""))[:64]
        code_value = str(form.get("code", ""))[:20]

        def work(session: Session) -> tuple[str, str, str] | None:
            try:
                user = accounts.user_for_setup(session, token)
            except AccountError:
                return None
            if password != repeat:
                return user.email, user.role, "repeat"
            try:
                users.complete_setup(session, token, password, totp_secret=secret,
                                     totp_code=code_value,
                                     origin=self.origin(request))
            except AccountError as exc:  # raised before anything was changed
                return user.email, user.role, str(exc)
            return user.email, user.role, ""

        found = await self.console.db(work)
        if found is None:
            return self.console.error(request, "setup", 400)
        email, role, error = found
        if error:
            return self.console.render(request, "setup.html",
                                  self._setup_context(email, role, secret or
                                                 accounts.new_totp_secret(), error),
                                  status=400)
        return self.console.redirect("/signin?done=setup")

    async def signout(self, request: Request) -> Response:
        who: Who = request.state.who

        def work(session: Session) -> None:
            users.sign_out(session, who.actor(request), who.token)

        await self.console.db(work)
        response = self.console.redirect("/signin")
        self.console.clear_session(response)
        return response

    async def signout_everywhere(self, request: Request) -> Response:
        who: Who = request.state.who
        assert who.user_id is not None
        user_id = who.user_id

        def work(session: Session) -> None:
            users.sign_out_everywhere(session, who.actor(request), user_id)

        await self.console.db(work)
        response = self.console.redirect("/signin")
        self.console.clear_session(response)
        return response

    async def language(self, request: Request) -> Response:
        code_ = request.path_params["code"]
        response = self.console.redirect("/")
        if code_ in LANGUAGES:
            response.set_cookie(LANG_COOKIE, code_, samesite="lax", secure=self.console.secure,
                                path="/", max_age=365 * 86400)
        return response

    def r(self, path: str, endpoint: object, permission: str, methods: list[str]) -> ConsoleRoute:
        return ConsoleRoute(path, endpoint, permission=permission, console=self.console,  # type: ignore[arg-type]
                            methods=methods)

    def routes(self) -> list[BaseRoute]:
        return [
            self.r("/signin", self.signin_page, PUBLIC, ["GET"]),
            self.r("/signin", self.signin, PUBLIC, ["POST"]),
            self.r("/signin/code", self.code_page, PUBLIC, ["GET"]),
            self.r("/signin/code", self.code, PUBLIC, ["POST"]),
            self.r("/setup/{token}", self.setup_page, PUBLIC, ["GET"]),
            self.r("/setup/{token}", self.setup, PUBLIC, ["POST"]),
            self.r("/lang/{code}", self.language, PUBLIC, ["GET"]),
            self.r("/signout", self.signout, SIGNED_IN, ["POST"]),
            self.r("/signout/everywhere", self.signout_everywhere, SIGNED_IN, ["POST"]),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _SignIn(console).routes()


