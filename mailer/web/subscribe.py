"""The subscribe form `/subscribe/<slug>` and the double opt-in confirmation `/c/<token>`.

Anyone may post the form, so it must not become a way to learn who is subscribed or to flood a
mailbox: every post gets the same "check your inbox" page (only the mail differs: a
confirmation link, a welcome, or "you are already subscribed"), mails go out after the answer so
timing tells nothing either, and posts are limited per address and per client address, counted
in the database (settings.web.subscribe_rate_per_address / _per_client, per hour).

Double opt-in lists keep the subscription `pending` until the link in the confirmation mail is
followed; its token expires after settings.web.confirm_link_hours. The link opens a page with a
button, as a link scanner following it must not confirm anything. A single opt-in list
subscribes a new address at once; an address that left us before must confirm again, so a
stranger cannot sign someone back up. The consent record keeps when, from which client address
and through which channel ("web") consent was given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailer.errors import TokenError
from mailer.kernel import tokens
from mailer.web.mail import ALREADY_SUBSCRIBED, CONFIRM, WELCOME, Mail
from mailer.web.pages import Pages
from mailer.web.preferences import STOPPED
from mailer.web.ratelimit import Limit
from mailer.web.texts import LANGUAGES
from subscribers import queries, service
from subscribers.errors import InvalidEmailError, InvalidValueError, SubscriberNotFoundError
from subscribers.models import MailingList, Subscriber

__all__ = ["routes", "sign_up", "confirm"]

SOURCE = "web"


@dataclass(frozen=True)
class ListInfo:
    id: int
    slug: str
    title: str
    description: str
    opt_in: str


def _public_list(session: Session, pages: Pages, slug: str) -> ListInfo | None:
    public = pages.settings.web.public_lists
    if public and slug not in public:
        return None
    found = queries.lists_by_slugs(session, [slug]).get(slug)
    if found is None:
        return None
    return ListInfo(found.id, found.slug, found.title, found.description, found.opt_in)


def _confirm_mail(pages: Pages, subscriber: Subscriber, lists: list[MailingList]) -> Mail:
    return Mail(
        CONFIRM,
        to=subscriber.email,
        language=subscriber.language,
        context={
            "name": subscriber.name,
            "list_names": [ml.title for ml in lists],
            "confirm_url": pages.links.confirm(subscriber.id, [ml.id for ml in lists]),
            "valid_hours": pages.settings.web.confirm_link_hours,
        },
    )


def _info_mail(pages: Pages, template: str, subscriber: Subscriber, ml: MailingList) -> Mail:
    return Mail(
        template,
        to=subscriber.email,
        language=subscriber.language,
        context={
            "name": subscriber.name,
            "list_names": [ml.title],
            "preferences_url": pages.links.preferences(subscriber.id),
            "unsubscribe_url": pages.links.unsubscribe(subscriber.id),
        },
    )


def sign_up(
    session: Session, pages: Pages, slug: str, data: service.SubscriberData, actor: str
) -> Mail | None:
    """Record a sign-up from the form; the mail to send, or None (suppressed or undeliverable).

    The caller shows the same page whatever this returns.
    """
    pages.rate.hit(
        session,
        [
            Limit("subscribe-client", actor, pages.settings.web.subscribe_rate_per_client),
            Limit("subscribe-address", service.email_key(data.email),
                  pages.settings.web.subscribe_rate_per_address),
        ],
    )
    mailing_list = service.get_list(session, slug)
    if service.is_suppressed(session, data.email):
        return None
    double = mailing_list.opt_in == "double"
    try:
        existing = service.get_subscriber(session, data.email)
    except SubscriberNotFoundError:
        subscriber = service.add_subscriber(
            session, data, lists=[slug], regions=pages.settings.regions, source=SOURCE,
            actor=actor, pending=double,
        )
        if double:
            return _confirm_mail(pages, subscriber, [mailing_list])
        return _info_mail(pages, WELCOME, subscriber, mailing_list)

    # A known address: the form's name and organisation are not applied (a stranger may post).
    if existing.status in STOPPED:
        return None
    status = queries.subscription_statuses(session, existing.id).get(mailing_list.id)
    if status == "active" and existing.status == "active":
        return _info_mail(pages, ALREADY_SUBSCRIBED, existing, mailing_list)
    if double or existing.status != "active":
        service.subscribe(session, existing.email, [slug], source=SOURCE, actor=actor,
                          pending=True)
        return _confirm_mail(pages, existing, [mailing_list])
    service.subscribe(session, existing.email, [slug], source=SOURCE, actor=actor)
    return _info_mail(pages, WELCOME, existing, mailing_list)


@dataclass(frozen=True)
class ConfirmState:
    email: str
    language: str
    list_titles: tuple[str, ...]
    pending: bool  # something is left to confirm
    stopped: bool  # we cannot mail this address: nothing is confirmed
    preferences_url: str


def _confirm_state(session: Session, pages: Pages, subscriber_id: int, list_ids: list[int]
                   ) -> tuple[ConfirmState, Subscriber, list[MailingList]]:
    subscriber = queries.subscriber_by_id(session, subscriber_id)
    if subscriber is None:
        raise TokenError("the link is not valid")
    lists = queries.lists_by_ids(session, list_ids)
    statuses = queries.subscription_statuses(session, subscriber.id)
    pending = [ml for ml in lists if statuses.get(ml.id) == "pending"]
    stopped = subscriber.status in STOPPED or service.is_suppressed(session, subscriber.email)
    state = ConfirmState(
        email=subscriber.email,
        language=subscriber.language,
        list_titles=tuple(ml.title for ml in lists),
        pending=bool(pending) or (subscriber.status == "unsubscribed" and bool(lists)),
        stopped=stopped,
        preferences_url=pages.links.preferences(subscriber.id),
    )
    return state, subscriber, pending


def describe_confirmation(session: Session, pages: Pages, subscriber_id: int,
                          list_ids: list[int]) -> ConfirmState:
    return _confirm_state(session, pages, subscriber_id, list_ids)[0]


def confirm(session: Session, pages: Pages, subscriber_id: int, list_ids: list[int],
            actor: str) -> ConfirmState:
    """Make the pending subscriptions named by a confirmation link active; idempotent."""
    state, subscriber, pending = _confirm_state(session, pages, subscriber_id, list_ids)
    if state.stopped or not state.pending:
        return state
    if subscriber.status == "unsubscribed":
        service.set_status(session, subscriber.email, "active", source=SOURCE, actor=actor,
                           detail="confirmed by e-mail link")
    if pending:
        service.subscribe(session, subscriber.email, [ml.slug for ml in pending],
                          source=SOURCE, actor=actor)
    return state


def routes(pages: Pages) -> list[BaseRoute]:
    hours = pages.settings.web.confirm_link_hours

    async def subscribe_form(request: Request) -> Response:
        info = await pages.db(_public_list, pages, request.path_params["slug"])
        if info is None:
            raise HTTPException(404)
        if request.method != "POST":
            lang = pages.language(request)
            return pages.render(
                request, "subscribe.html",
                {"mailing_list": info, "error": "", "languages": LANGUAGES,
                 "values": {"email": "", "name": "", "organisation": "", "language": lang}},
                lang=lang, switch_language=True,
            )

        raw = await request.form(max_files=0, max_fields=100)
        lang_field = raw.get("lang")
        request.state.lang = pages.language(
            request, lang_field if isinstance(lang_field, str) else None
        )
        form = await pages.form(request)
        values = {
            key: str(form.get(key, "")).strip()[:400]
            for key in ("email", "name", "organisation", "language")
        }
        if values["language"] not in LANGUAGES:
            values["language"] = request.state.lang
        mail = None
        if not form.get("website"):  # the hidden trap field is filled by bots: do nothing
            try:
                data = service.clean_data(
                    service.SubscriberData(
                        email=values["email"], name=values["name"],
                        organisation=values["organisation"], language=values["language"],
                    ),
                    None,
                )
            except (InvalidEmailError, InvalidValueError):
                return pages.render(
                    request, "subscribe.html",
                    {"mailing_list": info, "error": "sub.error.email", "languages": LANGUAGES,
                     "values": values},
                    lang=request.state.lang, status=400,
                )
            mail = await pages.db(sign_up, pages, info.slug, data, pages.client_address(request))
        return pages.render(
            request, "subscribe_sent.html", {"email": values["email"], "hours": hours},
            lang=request.state.lang, mails=[mail] if mail else None,
        )

    async def confirm_page(request: Request) -> Response:
        payload = pages.unsign(tokens.CONFIRM, request.path_params["token"],
                               max_age=dt.timedelta(hours=hours))
        list_ids = payload.get("l")
        if not isinstance(list_ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in list_ids
        ):
            raise TokenError("the link is not valid")
        subscriber_id: int = payload["s"]
        state = await pages.db(describe_confirmation, pages, subscriber_id, list_ids)
        request.state.lang = pages.language(request, state.language)
        if request.method == "POST":
            await pages.form(request)
            state = await pages.db(confirm, pages, subscriber_id, list_ids,
                                   pages.client_address(request))
            return pages.render(request, "confirmed.html", {"state": state},
                                lang=request.state.lang)
        if not state.pending or state.stopped:
            return pages.render(request, "confirmed.html", {"state": state},
                                lang=request.state.lang)
        return pages.render(request, "confirm.html", {"state": state}, lang=request.state.lang)

    return [
        Route("/subscribe/{slug}", subscribe_form, methods=["GET", "HEAD", "POST"]),
        Route("/c/{token}", confirm_page, methods=["GET", "HEAD", "POST"]),
    ]

