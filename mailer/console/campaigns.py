"""Campaign pages: the list (status, schedule, figures) and one campaign's live status."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.console.base import Console, ConsoleRoute, Who
from mailer.errors import NotFoundError
from mailer.usecases import campaigns

__all__ = ["routes"]


def routes(console: Console) -> list[BaseRoute]:
    async def campaign_list(request: Request) -> Response:
        who: Who = request.state.who

        def work(session: Session) -> list[dict[str, object]]:
            return campaigns.overview(session, who.actor(request))

        return console.render(request, "campaigns.html", {"campaigns": await console.db(work)})

    async def campaign_page(request: Request) -> Response:
        who: Who = request.state.who
        campaign_id: int = request.path_params["campaign_id"]

        def work(session: Session) -> dict[str, object] | None:
            try:
                return campaigns.detail(session, who.actor(request), campaign_id)
            except NotFoundError:
                return None

        info = await console.db(work)
        if info is None:
            raise HTTPException(404)
        return console.render(request, "campaign.html", {"c": info})

    return [
        ConsoleRoute("/campaigns", campaign_list, permission="campaigns.read", console=console),
        ConsoleRoute("/campaigns/{campaign_id:int}", campaign_page,
                     permission="campaigns.read", console=console),
    ]
