"""The RSVP page `/r/<token>`: answer an invitation yes / no / maybe, and change it until the
deadline.

The Yes / No / Maybe buttons in an invitation link here with `?a=<answer>`. A GET only shows
the meeting, the seats left and the person's answer, with the linked answer offered first:
mail scanners follow links, and must not answer for anyone. The person's click posts a
CSRF-protected form; the answer is decided by the events service (capacity, waiting list,
deadline) and the page redirects to itself (post/redirect/get), saying what happened. Mail the
answer owes (a confirmation with the calendar file, a waiting-list note, a freed seat for
someone else) is sent after the page is answered.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mailer.errors import EventError, NotFoundError, TokenError
from mailer.events import queries as event_queries
from mailer.events import service
from mailer.events.dates import format_moment, format_when
from mailer.events.models import ANSWERS
from mailer.kernel import tokens
from mailer.web.pages import Pages
from subscribers import queries

__all__ = ["routes", "TEXTS"]

log = logging.getLogger("mailer.web")

#: The RSVP page's own texts (the layout's come from mailer.web.texts).
TEXTS: dict[str, dict[str, str]] = {
    "nl": {
        "title": "Aanmelden",
        "greeting": "Beste {name},",
        "intro": "Komt u naar deze bijeenkomst? Kies hieronder uw antwoord.",
        "intro.change": "Wilt u uw antwoord wijzigen?",
        "when": "Wanneer",
        "where": "Waar",
        "online": "Online",
        "deadline": "Aanmelden tot",
        "seats": "Plaatsen",
        "seats.left": "Nog {n} van de {capacity} plaatsen vrij.",
        "seats.one": "Nog 1 van de {capacity} plaatsen vrij.",
        "seats.full": "De bijeenkomst is vol. Zegt u ja, dan komt u op de wachtlijst.",
        "answer.none": "U heeft nog niet geantwoord.",
        "answer.yes": "Uw antwoord: ja, u komt. Er is een plaats voor u.",
        "answer.waiting": "Uw antwoord: ja. U staat op de wachtlijst (nummer {position}).",
        "answer.no": "Uw antwoord: nee, u komt niet.",
        "answer.maybe": "Uw antwoord: misschien.",
        "button.yes": "Ja, ik kom",
        "button.no": "Nee, ik kom niet",
        "button.maybe": "Misschien",
        "change": "Uw antwoord wijzigen kan tot de sluitingsdatum.",
        "saved.yes": "Dank u! U bent aangemeld. U ontvangt een bevestiging met de afspraak "
        "voor uw agenda.",
        "saved.waiting": "Dank u! De bijeenkomst is vol: u staat op de wachtlijst. Komt er "
        "een plaats vrij, dan krijgt u die en hoort u het per e-mail.",
        "saved.no": "Jammer dat u niet kunt. Uw antwoord is opgeslagen.",
        "saved.maybe": "Uw antwoord is opgeslagen. Weet u het zeker, laat het ons dan weten.",
        "closed": "Aanmelden is gesloten sinds {deadline}.",
        "cancelled": "Deze bijeenkomst gaat niet door.",
        "refused": "Uw antwoord kon niet worden opgeslagen: aanmelden is gesloten.",
    },
    "en": {
        "title": "RSVP",
        "greeting": "Dear {name},",
        "intro": "Will you come to this meeting? Choose your answer below.",
        "intro.change": "Would you like to change your answer?",
        "when": "When",
        "where": "Where",
        "online": "Online",
        "deadline": "Reply by",
        "seats": "Seats",
        "seats.left": "{n} of {capacity} seats left.",
        "seats.one": "1 of {capacity} seats left.",
        "seats.full": "The meeting is full. If you say yes, you join the waiting list.",
        "answer.none": "You have not answered yet.",
        "answer.yes": "Your answer: yes, you will come. A seat is yours.",
        "answer.waiting": "Your answer: yes. You are on the waiting list (number {position}).",
        "answer.no": "Your answer: no, you will not come.",
        "answer.maybe": "Your answer: maybe.",
        "button.yes": "Yes, I will come",
        "button.no": "No, I will not come",
        "button.maybe": "Maybe",
        "change": "You can change your answer until the deadline.",
        "saved.yes": "Thank you! You are registered. A confirmation with the calendar entry "
        "is on its way.",
        "saved.waiting": "Thank you! The meeting is full: you are on the waiting list. If a "
        "seat becomes free it is yours, and we let you know by e-mail.",
        "saved.no": "Sorry you cannot come. Your answer is saved.",
        "saved.maybe": "Your answer is saved. Once you know for sure, please let us know.",
        "closed": "Replies closed on {deadline}.",
        "cancelled": "This meeting has been cancelled.",
        "refused": "Your answer could not be saved: replies are closed.",
    },
}


def rsvp_text(language: str, key: str, **values: Any) -> str:
    message = TEXTS.get(language, TEXTS["nl"])[key]
    return message.format(**values) if values else message


@dataclass(frozen=True)
class View:
    """Everything the page shows, as plain values (the session is closed when it renders)."""

    name: str
    language: str
    title: str
    when: str
    place: str
    online_url: str
    deadline: str
    description: str
    capacity: int | None
    seats_left: int | None
    answer: str  # "", "yes", "waiting", "no", "maybe"
    position: int
    open: bool
    cancelled: bool


def _view(session: Session, subscriber_id: int, event_id: int) -> View | None:
    person = queries.subscriber_by_id(session, subscriber_id)
    try:
        event = service.get_event(session, event_id)
    except NotFoundError:
        return None
    if person is None:
        return None
    lang = person.language if person.language in TEXTS else "nl"
    counts = service.event_counts(session, event_id)
    mine = service.current_answer(session, event_id, subscriber_id)
    answer, position = "", 0
    if mine is not None:
        answer = "waiting" if mine.waiting else mine.answer
        if mine.waiting:
            position = event_queries.waiting_position(session, mine)
    context = service.event_context(event)
    now = dt.datetime.now(dt.UTC)
    deadline = event.answers_until
    return View(
        name=person.name,
        language=lang,
        title=event.title,
        when=format_when(event.starts_at, event.ends_at, event.timezone, lang),
        place=context["place"],
        online_url=event.online_url,
        deadline=format_moment(deadline, event.timezone, lang),
        description=event.description,
        capacity=event.capacity,
        seats_left=service.seats_left(event, counts),
        answer=answer,
        position=position,
        open=event.status == "active" and now <= deadline,
        cancelled=event.status == "cancelled",
    )


def _answer(session: Session, pages: Pages, subscriber_id: int, event_id: int, answer: str
            ) -> str:
    """Record the answer; what the page says about it ("yes", "waiting", "no", "maybe")."""
    outcome = service.rsvp(session, pages.settings, event_id, subscriber_id, answer,
                           source="web")
    return "waiting" if outcome.waiting else outcome.answer


def _send_owed(pages: Pages, event_id: int) -> None:
    """After the answer: send what it owes (the periodic job retries anything that fails)."""
    from mailer.usecases.meeting_mail import send_owed_mail

    try:
        send_owed_mail(pages.app, event_id=event_id)
    except Exception:  # the answer stands; `mailer run` sends the owed mail on its next round
        log.exception("could not send meeting mail now")


def routes(pages: Pages) -> list[BaseRoute]:
    async def rsvp(request: Request) -> Response:
        payload = pages.unsign(tokens.RSVP, request.path_params["token"], ints=("s", "e"))
        subscriber_id: int = payload["s"]
        event_id: int = payload["e"]
        view = await pages.db(_view, subscriber_id, event_id)
        if view is None:
            # Erased person or removed meeting: nothing to answer, and nothing to reveal.
            raise TokenError("the link is not valid")
        lang = request.state.lang = view.language

        refused = False
        if request.method == "POST":
            form = await pages.form(request)
            answer = str(form.get("answer", ""))
            if answer not in ANSWERS:
                raise TokenError("the link is not valid")
            try:
                saved = await pages.db(_answer, pages, subscriber_id, event_id, answer)
            except EventError:
                refused = True
            else:
                response = pages.see_other(request, f"saved={saved}")
                response.background = BackgroundTask(_send_owed, pages, event_id)
                return response

        saved = request.query_params.get("saved", "")
        offered = request.query_params.get("a", "")
        if offered not in ANSWERS:
            offered = ""
        return pages.render(
            request,
            "rsvp.html",
            {
                "view": view,
                "rt": lambda key, **kw: rsvp_text(lang, key, **kw),
                "saved": saved if saved in ("yes", "waiting", "no", "maybe") else "",
                "offered": offered,
                "answers": ANSWERS,
                "refused": refused,
            },
            lang=lang,
            status=409 if refused else 200,
        )

    return [Route("/r/{token}", rsvp, methods=["GET", "HEAD", "POST"])]
