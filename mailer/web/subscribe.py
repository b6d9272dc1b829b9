"""The subscribe form `/subscribe/<slug>` and the double opt-in confirmation `/c/<token>`.

Anyone may post the form, so it must not become a way to learn who is subscribed, to flood a
mailbox, or to send a stranger's words from our address: every post gets the same "check your
inbox" page (only the mail differs: a confirmation link, a welcome, or "you are already
subscribed"), mails go out after the answer so timing tells nothing either, the mails carry no
text the requester typed, and posts are limited per address (normalised: case and `+tag` do
not count), per client address and in all, counted in the database
(settings.web.subscribe_rate_per_address / _per_client / _global, per hour). Only lists marked
public (`mailer lists create --public`) have a form. A proof-of-work challenge (mailer.web.pow)
and a hidden trap field keep bots out.

Double opt-in lists keep a new address's subscription `pending` until the link in the
confirmation mail is followed; its token expires after settings.web.confirm_link_hours. The link
opens a page with a button, as a link scanner following it must not confirm anything. A single
opt-in list subscribes a new address at once. Coming back is never one step: for an address we
already hold (left the list, unsubscribed, bounced, complained, or simply known) the form
changes nothing but stores the request, which the confirmation link applies. The consent record
keeps when, from which client address and through which channel ("web") consent was given.

What the requester typed (name, organisation) is never stored on a person whose address has
not confirmed it: a new address is stored bare (address and the chosen language only), the
typed fields wait in a sign-up request (table signup_requests) that the link in the mail to
that address applies. On a double opt-in list that is the confirmation link; a single opt-in
list subscribes at once, and its welcome mail carries a "confirm your details" link to the
same page. Unused, the request is forgotten with the link. So a stranger who signs up someone
else's address cannot make our later newsletters greet that person with the stranger's words.
"""

from __future__ import annotations

import dataclasses
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
from mailer.web.pow import FIELD as POW_FIELD
from mailer.web.pow import PowError
from mailer.web.ratelimit import Limit
from mailer.web.texts import LANGUAGES
from subscribers import queries, service
from subscribers.errors import InvalidEmailError, InvalidValueError
from subscribers.models import MailingList, SignupRequest, Subscriber

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
    found = queries.lists_by_slugs(session, [slug]).get(slug)
    if found is None or not found.public:  # staff-only lists are not shown to strangers
        return None
    return ListInfo(found.id, found.slug, found.title, found.description, found.opt_in)


def _spend(session: Session, pages: Pages, challenge: str) -> None:
    """A solved challenge counts once: a second post with it is refused (429)."""
    pages.rate.hit(session, [Limit("altcha", challenge, 1)])


def normalised_address(email: str) -> str:
    """What the per-address rate limit counts: case and a `+tag` do not make a new address."""
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


# Mails to an address that has not confirmed anything carry nothing the requester typed (no
# name): the form must not become a way to send a stranger's words from our address. `name` is
# still in the context, empty, for override templates written against the older context.
def _confirm_mail(pages: Pages, subscriber: Subscriber, lists: list[MailingList],
                  request_id: int | None = None) -> Mail:
    return Mail(
        CONFIRM,
        to=subscriber.email,
        language=subscriber.language,
        subscriber_id=subscriber.id,
        context={
            "name": "",
            "list_names": [ml.title for ml in lists],
            "confirm_url": pages.links.confirm(subscriber.public_id, [ml.id for ml in lists],
                                               request_id),
            "valid_hours": pages.settings.web.confirm_link_hours,
        },
    )


def _info_mail(pages: Pages, template: str, subscriber: Subscriber, ml: MailingList,
               request_id: int | None = None) -> Mail:
    """A welcome or "already subscribed" mail; `request_id`: the held typed details, which
    its `details_url` (the confirmation page) applies."""
    return Mail(
        template,
        to=subscriber.email,
        language=subscriber.language,
        subscriber_id=subscriber.id,
        context={
            "name": "",
            "list_names": [ml.title],
            "preferences_url": pages.links.preferences(subscriber.public_id),
            "unsubscribe_url": pages.links.unsubscribe(subscriber.public_id),
            "details_url": (pages.links.confirm(subscriber.public_id, [ml.id], request_id)
                            if request_id is not None else ""),
            "valid_hours": pages.settings.web.confirm_link_hours,
        },
    )


def _hold(session: Session, subscriber: Subscriber, data: service.SubscriberData) -> int | None:
    """Keep the typed details apart until the address confirms them; the request's id, or
    None when nothing was typed."""
    if not (data.name or data.organisation):
        return None
    request = queries.add_signup_request(session, subscriber.id, name=data.name,
                                         organisation=data.organisation,
                                         language=data.language)
    return request.id


def sign_up(
    session: Session, pages: Pages, slug: str, data: service.SubscriberData, actor: str
) -> Mail | None:
    """Record a sign-up from the form; the mail to send, or None (suppressed or undeliverable).

    The caller shows the same page whatever this returns. A new address is stored (pending on
    a double opt-in list) without the typed name and organisation, which wait in a sign-up
    request for the link in the mail. For an address we hold, nothing changes here: the
    request (lists, name, organisation, language) is stored apart and applied when the person
    follows the link in the confirmation mail — whatever the list's opt-in and the person's
    status.
    """
    web = pages.settings.web
    pages.rate.hit(
        session,
        [
            Limit("subscribe-all", "*", web.subscribe_rate_global),
            Limit("subscribe-client", actor, web.subscribe_rate_per_client),
            Limit("subscribe-address", normalised_address(data.email),
                  web.subscribe_rate_per_address),
        ],
    )
    mailing_list = service.get_list(session, slug)
    if not mailing_list.public or service.is_suppressed(session, data.email):
        return None
    double = mailing_list.opt_in == "double"
    existing = queries.subscriber_by_key(session, service.email_key(data.email))
    if existing is None:
        bare = dataclasses.replace(data, name="", organisation="")
        subscriber = service.add_subscriber(
            session, bare, lists=[slug], regions=pages.settings.regions, source=SOURCE,
            actor=actor, pending=double,
        )
        held = _hold(session, subscriber, data)
        if double:
            return _confirm_mail(pages, subscriber, [mailing_list], held)
        return _info_mail(pages, WELCOME, subscriber, mailing_list, held)

    if existing.status == "blocked":
        return None
    status = queries.subscription_statuses(session, existing.id).get(mailing_list.id)
    if status == "active" and existing.status == "active":
        return _info_mail(pages, ALREADY_SUBSCRIBED, existing, mailing_list)
    request = queries.add_signup_request(session, existing.id, name=data.name,
                                         organisation=data.organisation, language=data.language)
    return _confirm_mail(pages, existing, [mailing_list], request.id)


@dataclass(frozen=True)
class ConfirmState:
    email: str
    language: str
    list_titles: tuple[str, ...]
    pending: bool  # something is left to confirm
    stopped: bool  # we cannot mail this address: nothing is confirmed
    preferences_url: str


def _confirm_state(session: Session, pages: Pages, subscriber_id: str, list_ids: list[int],
                   request_id: int | None
                   ) -> tuple[ConfirmState, Subscriber, list[MailingList], SignupRequest | None]:
    subscriber = queries.subscriber_by_public_id(session, subscriber_id)
    if subscriber is None:
        raise TokenError("the link is not valid")
    lists = queries.lists_by_ids(session, list_ids)
    statuses = queries.subscription_statuses(session, subscriber.id)
    waiting = [ml for ml in lists if statuses.get(ml.id) != "active"]
    request = (queries.signup_request(session, request_id, subscriber.id)
               if request_id is not None else None)
    stopped = subscriber.status == "blocked" or service.is_suppressed(session, subscriber.email)
    state = ConfirmState(
        email=subscriber.email,
        language=subscriber.language,
        list_titles=tuple(ml.title for ml in lists),
        pending=bool(waiting) or request is not None
        or (subscriber.status != "active" and bool(lists)),
        stopped=stopped,
        preferences_url=pages.links.preferences(subscriber.public_id),
    )
    return state, subscriber, waiting, request


def describe_confirmation(session: Session, pages: Pages, subscriber_id: str,
                          list_ids: list[int], request_id: int | None = None) -> ConfirmState:
    return _confirm_state(session, pages, subscriber_id, list_ids, request_id)[0]


def confirm(session: Session, pages: Pages, subscriber_id: str, list_ids: list[int],
            actor: str, request_id: int | None = None) -> ConfirmState:
    """The person followed the link in their mailbox: make the lists it names active, their
    status active again, and apply the stored sign-up request; idempotent."""
    state, subscriber, waiting, request = _confirm_state(session, pages, subscriber_id,
                                                         list_ids, request_id)
    if state.stopped or not state.pending:
        return state
    if request is not None:
        service.edit_subscriber(
            session, subscriber.email, regions=pages.settings.regions,
            name=request.name or None, organisation=request.organisation or None,
            language=request.language or None,
        )
        queries.delete_signup_request(session, request.id)
    if subscriber.status != "active":  # unsubscribed, bounced or complained: consent again
        service.set_status(session, subscriber.email, "active", source=SOURCE, actor=actor,
                           detail="confirmed by e-mail link")
    if waiting:
        service.subscribe(session, subscriber.email, [ml.slug for ml in waiting],
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
                 "pow_challenge": pages.pow.challenge() if pages.pow.enabled else "",
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
        if pages.pow.enabled:
            try:
                solved = pages.pow.verify(str(form.get(POW_FIELD, "")))
            except PowError:
                return pages.render(
                    request, "subscribe.html",
                    {"mailing_list": info, "error": "sub.error.pow", "languages": LANGUAGES,
                     "pow_challenge": pages.pow.challenge(), "values": values},
                    lang=request.state.lang, status=400,
                )
            await pages.db(_spend, pages, solved)
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
                     "pow_challenge": pages.pow.challenge() if pages.pow.enabled else "",
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
        subscriber_id: str = payload["s"]
        request_id = payload.get("r")
        if request_id is not None and (not isinstance(request_id, int)
                                       or isinstance(request_id, bool)):
            raise TokenError("the link is not valid")
        state = await pages.db(describe_confirmation, pages, subscriber_id, list_ids,
                               request_id)
        request.state.lang = pages.language(request, state.language)
        if request.method == "POST":
            await pages.form(request)
            state = await pages.db(confirm, pages, subscriber_id, list_ids,
                                   pages.client_address(request), request_id)
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

