"""The signed-in person's own account: who they are, and signing out everywhere."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.accounts.roles import SIGNED_IN
from mailer.console.base import Console, ConsoleRoute

__all__ = ["routes"]


def routes(console: Console) -> list[BaseRoute]:
    async def account(request: Request) -> Response:
        return console.render(request, "account.html")

    return [ConsoleRoute("/account", account, permission=SIGNED_IN, console=console)]
