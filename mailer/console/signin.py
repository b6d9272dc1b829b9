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


def routes(console: Console) -> list[BaseRoute]:
    settings = console.settings
    limiter = RateLimiter(settings.secret_key, window=SIGNIN_WINDOW)

    def rate_limit(session: Session, request: Request) -> None:
        limiter.hit(session, [Limit("console-signin", console.client(request),
                                    settings.console.signin_rate_per_client)])

    async def signin_page(request: Request) -> Response:
        who: Who = request.state.who
        if who.signed_in:
            return console.redirect("/")
        done = request.query_params.get("done") == "setup"
        return console.render(request, "signin.html", {"error": "", "email": "", "done": done})

    async def signin(request: Request) -> Response:
        form = await request.form()
        email = str(form.get("email", ""))[:320]
        password = str(form.get("password", ""))[:1000]
        old = request.cookies.get("gt_console", "")

        def work(session: Session) -> _Outcome:
            try:
                rate_limit(session, request)
            except RateLimited:
                return _Outcome(error="rate")
            try:
                _user, token, stage = users.sign_in(
                    session, settings, email, password, origin=f"console {console.client(request)}",
                    client=console.client(request),
                    user_agent=request.headers.get("user-agent", ""), replaces=old or None)
            except accounts.SignInFailed:
                return _Outcome(error="signin")
            return _Outcome(token=token, stage=stage)

        outcome = await console.db(work)
        if outcome.error:
            status = 429 if outcome.error == "rate" else 400
            return console.render(request, "signin.html",
                                  {"error": outcome.error, "email": email, "done": False},
                                  status=status)
        response = console.redirect("/signin/code" if outcome.stage == "totp" else "/")
        console.set_session(response, outcome.token)
        return response

    async def code_page(request: Request) -> Response:
        who: Who = request.state.who
        if who.stage != "totp":
            return console.redirect("/" if who.signed_in else "/signin")
        return console.render(request, "code.html", {"error": ""})

    async def code(request: Request) -> Response:
        who: Who = request.state.who
        if who.stage != "totp" or who.user_id is None:
            return console.redirect("/signin")
        form = await request.form()
        value = str(form.get("code", ""))[:20]
        user_id = who.user_id

        def work(session: Session) -> _Outcome:
            try:
                rate_limit(session, request)
            except RateLimited:
                return _Outcome(error="rate")
            user = accounts.queries.user_by_id(session, user_id)
            assert user is not None
            try:
                token = users.second_factor(
                    session, settings, user, value, origin=f"console {console.client(request)}",
                    client=console.client(request),
                    user_agent=request.headers.get("user-agent", ""), replaces=who.token)
            except accounts.SignInFailed:
                return _Outcome(error="code")
            return _Outcome(token=token, stage="full")

        outcome = await console.db(work)
        if outcome.error:
            return console.render(request, "code.html", {"error": outcome.error},
                                  status=429 if outcome.error == "rate" else 400)
        response = console.redirect("/")
        console.set_session(response, outcome.token)
        return response

    def _setup_context(email: str, role: str, secret: str, error: str) -> dict[str, object]:
        uri = accounts.totp_uri(secret, email)
        qr = segno.make(uri, error="m").svg_data_uri(scale=4, dark="#0b2748")
        return {"email": email, "role": role, "secret": secret, "qr": qr, "error": error,
                "min_password": accounts.MIN_PASSWORD}

    async def setup_page(request: Request) -> Response:
        token = request.path_params["token"]

        def work(session: Session) -> tuple[str, str] | None:
            try:
                user = accounts.user_for_setup(session, token)
            except AccountError:
                return None
            return user.email, user.role

        found = await console.db(work)
        if found is None:
            return console.error(request, "setup", 400)
        return console.render(request, "setup.html",
                              _setup_context(*found, accounts.new_totp_secret(), ""))

    async def setup(request: Request) -> Response:
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
                                     origin=f"console {console.client(request)}")
            except AccountError as exc:  # raised before anything was changed
                return user.email, user.role, str(exc)
            return user.email, user.role, ""

        found = await console.db(work)
        if found is None:
            return console.error(request, "setup", 400)
        email, role, error = found
        if error:
            return console.render(request, "setup.html",
                                  _setup_context(email, role, secret or
                                                 accounts.new_totp_secret(), error),
                                  status=400)
        return console.redirect("/signin?done=setup")

    async def signout(request: Request) -> Response:
        who: Who = request.state.who

        def work(session: Session) -> None:
            users.sign_out(session, who.actor(request), who.token)

        await console.db(work)
        response = console.redirect("/signin")
        console.clear_session(response)
        return response

    async def signout_everywhere(request: Request) -> Response:
        who: Who = request.state.who
        assert who.user_id is not None
        user_id = who.user_id

        def work(session: Session) -> None:
            users.sign_out_everywhere(session, who.actor(request), user_id)

        await console.db(work)
        response = console.redirect("/signin")
        console.clear_session(response)
        return response

    async def language(request: Request) -> Response:
        code_ = request.path_params["code"]
        response = console.redirect("/")
        if code_ in LANGUAGES:
            response.set_cookie(LANG_COOKIE, code_, samesite="lax", secure=console.secure,
                                path="/", max_age=365 * 86400)
        return response

    def r(path: str, endpoint: object, permission: str, methods: list[str]) -> ConsoleRoute:
        return ConsoleRoute(path, endpoint, permission=permission, console=console,  # type: ignore[arg-type]
                            methods=methods)

    return [
        r("/signin", signin_page, PUBLIC, ["GET"]),
        r("/signin", signin, PUBLIC, ["POST"]),
        r("/signin/code", code_page, PUBLIC, ["GET"]),
        r("/signin/code", code, PUBLIC, ["POST"]),
        r("/setup/{token}", setup_page, PUBLIC, ["GET"]),
        r("/setup/{token}", setup, PUBLIC, ["POST"]),
        r("/lang/{code}", language, PUBLIC, ["GET"]),
        r("/signout", signout, SIGNED_IN, ["POST"]),
        r("/signout/everywhere", signout_everywhere, SIGNED_IN, ["POST"]),
    ]
