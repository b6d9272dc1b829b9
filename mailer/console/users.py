"""Admins manage staff accounts: add (shows the set-up link once), disable, enable, reset."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.accounts.models import ROLES
from mailer.console.base import Console, ConsoleRoute, Who
from mailer.errors import AccountError
from mailer.usecases import users

__all__ = ["routes"]

PERMISSION = "users.manage"


class _Users:
    """The endpoints, sharing the console and its settings."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.settings = self.console.settings

    def listing(self, session: Session, request: Request) -> list[dict[str, object]]:
        who: Who = request.state.who
        return [{"email": u.email, "name": u.name, "role": u.role, "status": u.status,
                 # An account the provider made has no password, and is set up all the same.
                 "set_up": bool(u.password_hash or u.oidc_subject),
                 "totp": bool(u.totp_secret), "methods": users.signin_methods(u),
                 "last_signin_at": u.last_signin_at}
                for u in users.list_users(session, who.actor(request))]

    async def page(self, request: Request, *, link: str = "", error: str = "", done: str = "",
                   status: int = 200) -> Response:
        rows = await self.console.db(self.listing, request)
        return self.console.render(request, "users.html", {
            "users": rows, "roles": ROLES, "link": link, "error": error, "done": done,
        }, status=status)

    async def user_list(self, request: Request) -> Response:
        return await self.page(request)

    async def add(self, request: Request) -> Response:
        who: Who = request.state.who
        form = await request.form()
        email = str(form.get("email", ""))[:320]
        role = str(form.get("role", ""))
        name = str(form.get("name", ""))[:200]

        def work(session: Session) -> tuple[str, str]:
            try:
                user, link = users.add_user(session, self.settings, who.actor(request), email, role,
                                            name=name)
            except AccountError as exc:
                return "", str(exc)
            return link, user.email

        link, info = await self.console.db(work)
        if not link:
            return await self.page(request, error=info, status=400)
        return await self.page(request, link=link, done=info)

    def change(self, action: str) -> object:
        async def endpoint(request: Request) -> Response:
            who: Who = request.state.who
            form = await request.form()
            email = str(form.get("email", ""))[:320]

            def work(session: Session) -> tuple[str, str]:
                actor = who.actor(request)
                try:
                    if action == "disable":
                        users.disable_user(session, actor, email)
                    elif action == "enable":
                        users.enable_user(session, actor, email)
                    else:
                        return users.reset_user(session, self.settings, actor, email), ""
                except AccountError as exc:
                    return "", str(exc)
                return "", ""

            link, error = await self.console.db(work)
            if error:
                return await self.page(request, error=error, status=400)
            return await self.page(request, link=link, done=email)

        endpoint.__name__ = f"user_{action}"
        return endpoint

    def r(self, path: str, endpoint: object, methods: list[str]) -> ConsoleRoute:
        return ConsoleRoute(path, endpoint, permission=PERMISSION,  # type: ignore[arg-type]
                            console=self.console, methods=methods)

    def routes(self) -> list[BaseRoute]:
        return [
            self.r("/users", self.user_list, ["GET"]),
            self.r("/users", self.add, ["POST"]),
            self.r("/users/disable", self.change("disable"), ["POST"]),
            self.r("/users/enable", self.change("enable"), ["POST"]),
            self.r("/users/reset", self.change("reset"), ["POST"]),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _Users(console).routes()


