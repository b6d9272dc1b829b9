"""The calendar: a month of scheduled sends and meetings, server-rendered, in `timezone`."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.console.base import Console, ConsoleRoute, Who
from mailer.kernel.clock import utcnow
from mailer.usecases import dashboard as dashboards

__all__ = ["routes"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def routes(console: Console) -> list[BaseRoute]:
    async def calendar(request: Request) -> Response:
        who: Who = request.state.who
        today = utcnow().astimezone(console.settings.tz)
        year, month = today.year, today.month
        found = _MONTH.match(request.query_params.get("month", ""))
        if found and 2000 <= int(found[1]) <= 2200 and 1 <= int(found[2]) <= 12:
            year, month = int(found[1]), int(found[2])

        def work(session: Session) -> dict[str, object]:
            return dashboards.month(session, console.settings, who.actor(request), year, month)

        return console.render(request, "calendar.html", {"cal": await console.db(work)})

    return [ConsoleRoute("/calendar", calendar, permission="campaigns.read", console=console)]
