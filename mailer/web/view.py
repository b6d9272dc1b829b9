"""The "view online" page `/v/<token>`: the newsletter as it was sent to that person.

The campaign's stored content is rendered again for the subscriber by the same renderer the
mail went through, so the page shows what the mail showed (links included). Its own CSP allows
the newsletter's inline styles and https images, and still no scripts, frames or forms.
"""

from __future__ import annotations

from types import MappingProxyType

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from mailer.errors import TokenError
from mailer.kernel import tokens
from mailer.web import queries
from mailer.web.pages import Pages
from subscribers import queries as subscriber_queries

__all__ = ["routes", "VIEW_CSP"]

VIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def render_for(session: Session, pages: Pages, subscriber_id: int, campaign_id: int) -> str:
    """The campaign's HTML as rendered for this subscriber; TokenError if either is gone."""
    from mailer.compose import Recipient

    subscriber = subscriber_queries.subscriber_by_id(session, subscriber_id)
    campaign = queries.campaign_by_id(session, campaign_id)
    if subscriber is None or campaign is None:
        raise TokenError("the link is not valid")
    renderer = pages.app.renderer_factory(session, campaign, pages.settings, pages.app.signer)
    recipient = Recipient(
        subscriber_id=subscriber.id,
        email=subscriber.email,
        name=subscriber.name,
        organisation=subscriber.organisation,
        job_title=subscriber.job_title,
        region=subscriber.region,
        language=subscriber.language,
        attributes=MappingProxyType(dict(subscriber.attributes or {})),
    )
    return renderer.render(recipient).html


def routes(pages: Pages) -> list[BaseRoute]:
    async def view(request: Request) -> Response:
        payload = pages.unsign(tokens.VIEW, request.path_params["token"], ints=("s", "c"))
        html = await pages.db(render_for, pages, payload["s"], payload["c"])
        return HTMLResponse(html, headers={"content-security-policy": VIEW_CSP})

    return [Route("/v/{token}", view, methods=["GET", "HEAD"])]
