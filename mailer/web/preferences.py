"""The preferences page `/p/<token>`: choose lists and language, leave everything, get a copy of
one's data.

The link comes with every newsletter, and newsletters get forwarded: whoever holds the link can
change these choices (as with every mailer's preference link), but cannot see the person's data.
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
from mailer.web.mail import DATA_COPY, Mail
from mailer.web.pages import Pages
from mailer.web.ratelimit import Limit
from mailer.web.texts import LANGUAGES
from mailer.web.unsubscribe import unsubscribe_person
from subscribers import queries, service
from subscribers.models import MailingList, Subscriber

__all__ = ["routes", "DATA_COPY_PER_HOUR"]

DATA_COPY_PER_HOUR = 3
# Statuses in which we no longer mail a person; only staff (or a new bounce-free address) undo them.
STOPPED = ("bounced", "complained", "blocked")


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
    public = set(pages.settings.web.public_lists)
    return [
        ml for ml in queries.all_lists(session) if not public or ml.slug in public or ml.id in live
    ]


def _subscriber(session: Session, subscriber_id: int) -> Subscriber:
    subscriber = queries.subscriber_by_id(session, subscriber_id)
    if subscriber is None:
        raise TokenError("the link is not valid")  # erased: reveal nothing
    return subscriber


def _stopped(session: Session, subscriber: Subscriber) -> bool:
    return subscriber.status in STOPPED or service.is_suppressed(session, subscriber.email)


def _person(session: Session, pages: Pages, subscriber_id: int) -> Person:
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
        preferences_url=pages.links.preferences(subscriber.id),
    )


def _save(session: Session, pages: Pages, subscriber_id: int, chosen: set[int], language: str,
          actor: str) -> bool:
    """Apply the form; False if lists were chosen that this address can no longer get."""
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
        return True
    if _stopped(session, subscriber):
        return False
    if subscriber.status != "active":  # "unsubscribed": choosing a list is consent again
        service.set_status(session, subscriber.email, "active", source="web", actor=actor)
    # The link reached the person's own mailbox, so this is a confirmed opt-in.
    service.subscribe(session, subscriber.email, to_add, source="web", actor=actor)
    return True


def _data_copy(session: Session, pages: Pages, subscriber_id: int) -> Mail:
    subscriber = _subscriber(session, subscriber_id)
    pages.rate.hit(session, [Limit("data-copy", str(subscriber.id), DATA_COPY_PER_HOUR)])
    record = person_record(session, subscriber.email, pages.settings)
    return Mail(
        DATA_COPY,
        to=subscriber.email,
        language=subscriber.language,
        context={
            "name": subscriber.name,
            "record_json": json.dumps(record, indent=2, ensure_ascii=False, default=str),
            "preferences_url": pages.links.preferences(subscriber.id),
        },
    )


def routes(pages: Pages) -> list[BaseRoute]:
    async def preferences(request: Request) -> Response:
        payload = pages.unsign(tokens.PREFERENCES, request.path_params["token"])
        subscriber_id: int = payload["s"]
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
            ok = await pages.db(_save, pages, subscriber_id, chosen, language, actor)
            return pages.see_other(request, "saved=1" if ok else "saved=stopped")

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
