"""The dashboard: what is scheduled next, what is running, alerts, and the last 30 days."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.accounts.roles import SIGNED_IN, allowed
from mailer.console.base import Console, ConsoleRoute, Who
from mailer.usecases import dashboard as dashboards

__all__ = ["routes"]


def routes(console: Console) -> list[BaseRoute]:
    async def dashboard(request: Request) -> Response:
        who: Who = request.state.who
        actor = who.actor(request)

        def work(session: Session) -> dict[str, object]:
            if not allowed(who.role, "campaigns.read"):
                return {"board": None}
            return {"board": dashboards.dashboard(session, console.settings, actor)}

        return console.render(request, "dashboard.html", await console.db(work))

    return [ConsoleRoute("/", dashboard, permission=SIGNED_IN, console=console)]
