"""The preferences page `/p/<token>`: choose lists and language, leave everything, get a copy of
one's data.

The link comes with every newsletter, and newsletters get forwarded: whoever holds the link can
change these choices (as with every mailer's preference link), but cannot see the person's data,
and cannot sign the person back up: leaving is immediate, coming back (to a list they left, or
after they unsubscribed, bounced or complained) waits for the link in a mail to their address.
A copy of the data is therefore never shown or offered for download here: it is mailed (as JSON
in the message) to the person's own address, at most a few times an hour. A signed download
link would hand the data to whoever clicks first in a forwarded mail; the mailbox is the one
place we know belongs to the person.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mailer.errors import TokenError
from mailer.kernel import tokens
from mailer.usecases.privacy import person_record
from mailer.web.mail import CONFIRM, DATA_COPY, Mail
from mailer.web.pages import Pages
from mailer.web.ratelimit import Limit
from mailer.web.texts import LANGUAGES
from mailer.web.unsubscribe import unsubscribe_person
from subscribers import queries, service
from subscribers.models import MailingList, Subscriber

__all__ = ["routes", "DATA_COPY_PER_HOUR"]

DATA_COPY_PER_HOUR = 3


@dataclass(frozen=True)
class ListChoice:
    id: int
    slug: str
    title: str
    description: str
    state: str  # "active", "pending" or "" (not on the list)


@dataclass(frozen=True)
class Person:
    email: str
    language: str
    stopped: bool  # no new lists can be chosen: we cannot mail this address
    lists: tuple[ListChoice, ...]
    preferences_url: str


def offered_lists(session: Session, pages: Pages, live: set[int]) -> list[MailingList]:
    """The public lists, and any list the person is on (so they can always leave it)."""
    return [ml for ml in queries.all_lists(session) if ml.public or ml.id in live]


def _subscriber(session: Session, subscriber_id: str) -> Subscriber:
    subscriber = queries.subscriber_by_public_id(session, subscriber_id)
    if subscriber is None:
        raise TokenError("the link is not valid")  # erased: reveal nothing
    return subscriber


def _stopped(session: Session, subscriber: Subscriber) -> bool:
    # Bounced and complained people may choose lists again, through a confirmation mail.
    return subscriber.status == "blocked" or service.is_suppressed(session, subscriber.email)


def _person(session: Session, pages: Pages, subscriber_id: str) -> Person:
    subscriber = _subscriber(session, subscriber_id)
    statuses = queries.subscription_statuses(session, subscriber.id)
    live = {lid for lid, status in statuses.items() if status != "unsubscribed"}
    return Person(
        email=subscriber.email,
        language=subscriber.language,
        stopped=_stopped(session, subscriber),
        lists=tuple(
            ListChoice(
                id=ml.id, slug=ml.slug, title=ml.title, description=ml.description,
                state=statuses.get(ml.id, "") if ml.id in live else "",
            )
            for ml in offered_lists(session, pages, live)
        ),
        preferences_url=pages.links.preferences(subscriber.public_id),
    )


def _save(session: Session, pages: Pages, subscriber_id: str, chosen: set[int], language: str,
          actor: str) -> tuple[str, Mail | None]:
    """Apply the form: ("1", None) when done; ("stopped", None) if lists were chosen that this
    address can no longer get; ("confirm", mail) when they wait for a confirmation mail.

    Leaving takes effect at once. Coming back — to a list the person left, or for a person
    who unsubscribed, bounced or complained — needs the link in a mail to their own address:
    whoever holds a forwarded preferences link must not sign them back up."""
    subscriber = _subscriber(session, subscriber_id)
    if language in LANGUAGES and language != subscriber.language:
        service.edit_subscriber(session, subscriber.email, language=language)
    statuses = queries.subscription_statuses(session, subscriber.id)
    live = {lid for lid, status in statuses.items() if status != "unsubscribed"}
    offered = {ml.id: ml for ml in offered_lists(session, pages, live)}
    chosen &= set(offered)
    to_add = [offered[i].slug for i in sorted(chosen - live)]
    to_remove = [offered[i].slug for i in sorted((live & set(offered)) - chosen)]
    for slug in to_remove:
        service.unsubscribe(session, subscriber.email, slug, source="web", actor=actor)
    if not to_add:
        return "1", None
    if subscriber.status == "blocked" or service.is_suppressed(session, subscriber.email):
        return "stopped", None
    left = {lid for lid, status in statuses.items() if status == "unsubscribed"}
    ids = {ml.slug: ml.id for ml in offered.values()}
    back = [slug for slug in to_add if subscriber.status != "active" or ids[slug] in left]
    new = [slug for slug in to_add if slug not in back]
    if new:  # lists the person was never on: a choice, like leaving one
        service.subscribe(session, subscriber.email, new, source="web", actor=actor)
    if not back:
        return "1", None
    lists = [ml for ml in offered.values() if ml.slug in back]
    return "confirm", Mail(
        CONFIRM,
        to=subscriber.email,
        language=subscriber.language,
        context={
            "name": "",
            "list_names": [ml.title for ml in lists],
            "confirm_url": pages.links.confirm(subscriber.public_id, [ml.id for ml in lists]),
            "valid_hours": pages.settings.web.confirm_link_hours,
        },
    )


def _data_copy(session: Session, pages: Pages, subscriber_id: str) -> Mail:
    subscriber = _subscriber(session, subscriber_id)
    pages.rate.hit(session, [Limit("data-copy", str(subscriber.id), DATA_COPY_PER_HOUR)])
    record = person_record(session, subscriber.email, pages.settings)
    return Mail(
        DATA_COPY,
        to=subscriber.email,
        language=subscriber.language,
        subscriber_id=subscriber.id,
        context={
            "name": subscriber.name,
            "record_json": json.dumps(record, indent=2, ensure_ascii=False, default=str),
            "preferences_url": pages.links.preferences(subscriber.public_id),
        },
    )


def routes(pages: Pages) -> list[BaseRoute]:
    async def preferences(request: Request) -> Response:
        payload = pages.unsign(tokens.PREFERENCES, request.path_params["token"])
        subscriber_id: str = payload["s"]
        actor = pages.client_address(request)
        person = await pages.db(_person, pages, subscriber_id)
        request.state.lang = pages.language(request, person.language)

        if request.method == "POST":
            form = await pages.form(request)
            action = form.get("action")
            if action == "leave":
                await pages.db(unsubscribe_person, subscriber_id, None, everything=True,
                               source="web", actor=actor)
                return pages.render(
                    request, "unsubscribed.html", {"target": person, "everything": True},
                    lang=request.state.lang,
                )
            if action == "export":
                mail = await pages.db(_data_copy, pages, subscriber_id)
                return RedirectResponse(
                    f"{request.url.path}?sent=1", 303,
                    background=BackgroundTask(pages.send_all, [mail]),
                )
            chosen = set()
            for value in form.getlist("list"):
                if isinstance(value, str) and value.isdigit():
                    chosen.add(int(value))
            language = str(form.get("language", person.language))
            saved, confirm = await pages.db(_save, pages, subscriber_id, chosen, language, actor)
            response = pages.see_other(request, f"saved={saved}")
            if confirm is not None:
                response.background = BackgroundTask(pages.send_all, [confirm])
            return response

        return pages.render(
            request, "preferences.html",
            {
                "person": person,
                "saved": request.query_params.get("saved", ""),
                "sent": request.query_params.get("sent", "") == "1",
                "languages": LANGUAGES,
            },
            lang=request.state.lang,
        )

    return [Route("/p/{token}", preferences, methods=["GET", "HEAD", "POST"])]
