"""The unsubscribe page `/u/<token>`: the link in every footer and in `List-Unsubscribe`.

GET only shows a page with one button: link scanners and previews follow links, and must not
unsubscribe anyone. The button posts a CSRF-protected form. A POST with the body
`List-Unsubscribe=One-Click` is RFC 8058's one-click unsubscribe, as mail providers send it
without cookies or form tokens: it unsubscribes at once, idempotently, and answers 200.

What is left, as in mature mailers: the lists the campaign was sent to (so the person stops
getting this kind of mail and keeps the rest); the page offers "all e-mail" as well. A link
without a campaign, or a campaign sent to no list in particular, leaves everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from mailer.errors import TokenError
from mailer.kernel import tokens
from mailer.web import queries
from mailer.web.csrf import FIELD
from mailer.web.pages import Pages, read_form
from subscribers import queries as subscriber_queries
from subscribers import service
from subscribers.errors import ListNotFoundError
from subscribers.models import MailingList, Subscriber

__all__ = ["routes", "unsubscribe_person"]

ONE_CLICK_SOURCE = "one-click"


@dataclass(frozen=True)
class Target:
    """Whom a link unsubscribes, from what, and whether anything is left to leave."""

    email: str
    language: str
    list_titles: tuple[str, ...]  # empty: the link leaves everything
    live: bool  # still on one of those lists (or, for "everything", still receiving mail)
    preferences_url: str


def _campaign_lists(session: Session, campaign_id: object) -> list[MailingList]:
    if not isinstance(campaign_id, int):
        return []
    campaign = queries.campaign_by_id(session, campaign_id)
    if campaign is None:
        return []
    slugs = [s for s in (campaign.audience or {}).get("lists", []) if isinstance(s, str)]
    found = subscriber_queries.lists_by_slugs(session, slugs)
    return [found[s] for s in slugs if s in found]


def _live_list_ids(session: Session, subscriber: Subscriber) -> set[int]:
    statuses = subscriber_queries.subscription_statuses(session, subscriber.id)
    return {list_id for list_id, status in statuses.items() if status != "unsubscribed"}


def _target(session: Session, pages: Pages, subscriber_id: str, campaign_id: object
            ) -> Target | None:
    subscriber = subscriber_queries.subscriber_by_public_id(session, subscriber_id)
    if subscriber is None:
        return None
    lists = _campaign_lists(session, campaign_id)
    live_ids = _live_list_ids(session, subscriber)
    if lists:
        live = any(ml.id in live_ids for ml in lists)
    else:
        live = subscriber.status == "active" or bool(live_ids)
    return Target(
        email=subscriber.email,
        language=subscriber.language,
        list_titles=tuple(ml.title for ml in lists),
        live=live,
        preferences_url=pages.links.preferences(subscriber.public_id),
    )


def unsubscribe_person(
    session: Session, subscriber_id: str, campaign_id: object, *, everything: bool,
    source: str, actor: str,
) -> None:
    """Leave the campaign's lists, or everything; nothing happens for an unknown person."""
    subscriber = subscriber_queries.subscriber_by_public_id(session, subscriber_id)
    if subscriber is None:
        return
    lists = [] if everything else _campaign_lists(session, campaign_id)
    # Which campaign's link it was, so the campaign's status can count who left through it.
    detail = service.campaign_detail(campaign_id) if campaign_id else ""
    if not lists:
        service.unsubscribe(session, subscriber.email, source=source, actor=actor,
                            detail=detail)
        return
    for mailing_list in lists:  # the campaign's few lists, not recipients
        try:
            service.unsubscribe(
                session, subscriber.email, mailing_list.slug, source=source, actor=actor,
                detail=detail,
            )
        except ListNotFoundError:  # removed since the campaign was sent
            continue


def routes(pages: Pages) -> list[BaseRoute]:
    async def unsubscribe(request: Request) -> Response:
        payload = pages.unsign(tokens.UNSUBSCRIBE, request.path_params["token"])
        subscriber_id: str = payload["s"]
        campaign_id = payload.get("c")
        actor = pages.client_address(request)

        if request.method == "POST":
            form = await read_form(request)
            if form.get("List-Unsubscribe") == "One-Click" and FIELD not in form:
                # RFC 8058: no cookies, no token; the signed link is the authorisation.
                await pages.db(
                    unsubscribe_person, subscriber_id, campaign_id, everything=False,
                    source=ONE_CLICK_SOURCE, actor=actor,
                )
                return PlainTextResponse("Unsubscribed. / Afgemeld.\n")

        target = await pages.db(_target, pages, subscriber_id, campaign_id)
        if target is None:
            # Erased, or never existed: nothing to leave, and nothing to reveal.
            raise TokenError("the link is not valid")
        request.state.lang = pages.language(request, target.language)

        if request.method == "POST":
            form = await pages.form(request)
            everything = form.get("scope") == "all" or not target.list_titles
            await pages.db(
                unsubscribe_person, subscriber_id, campaign_id, everything=everything,
                source="web", actor=actor,
            )
            return pages.render(
                request, "unsubscribed.html",
                {"target": target, "everything": everything},
                lang=request.state.lang,
            )
        return pages.render(request, "unsubscribe.html", {"target": target},
                            lang=request.state.lang)

    return [Route("/u/{token}", unsubscribe, methods=["GET", "HEAD", "POST"])]

