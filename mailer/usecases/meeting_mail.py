"""Sends the one-to-one mail meetings owe: RSVP confirmations, waiting-list notes, freed seats,
reminders and the nudge (composition + the one sender, mailer.delivery.sender).

The events domain queues what is owed in `event_mails`, in the transaction that decided it.
This module claims owed rows (short transaction), composes and sends each one outside any
transaction (so a slow relay never holds a database lock), and records the results in one
more short transaction. It runs after an answer on the RSVP page, from `mailer events
send-due`, and as `mailer run`'s due work (App.due_work in mailer.app), which on every poll also
queues the reminders that have come due. A sender that dies mid-way leaves rows in "sending"; after
CLAIM_LEASE another round takes them again.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailer.compose.renderer import pick_language
from mailer.database.connect import session_scope
from mailer.delivery.retry import Verdict, judge
from mailer.delivery.sender import Message
from mailer.delivery.transport import Outcome
from mailer.events import queries, service
from mailer.events.ical import METHOD_REQUEST, PARTSTATS, PersonalCalendar
from subscribers.queries import suppressed_keys

if TYPE_CHECKING:
    from mailer.app import App

__all__ = [
    "TEMPLATES",
    "SendReport",
    "send_owed_mail",
    "run_due_work",
    "due_work",
    "CLAIM_LEASE",
]

log = logging.getLogger("mailer.events")

#: Kind of owed mail -> template (templates/mail/<name>.<nl|en>.<html|txt>).
TEMPLATES = {
    "confirmation": "rsvp-confirmation",
    "waitlist": "rsvp-waitlist",
    "seat": "waitlist-seat",
    "reminder": "event-reminder",
    "nudge": "event-nudge",
}
# These carry the meeting as a calendar file, so "yes" lands in the person's calendar.
_WITH_CALENDAR = frozenset({"confirmation", "seat", "reminder"})
CLAIM_LEASE = dt.timedelta(minutes=10)


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retry: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Owed:
    mail_id: int
    kind: str
    to: str
    language: str
    attempts: int
    first_attempt_at: dt.datetime | None
    context: dict[str, Any]
    calendar: tuple[str, str] | None  # (calendar text, attachment name)


def _claim(app: App, now: dt.datetime, event_id: int | None, limit: int
           ) -> tuple[list[_Owed], list[int]]:
    """Claim owed mail and gather everything needed to send it; (to send, skipped ids)."""
    settings = app.settings
    links = app.links
    with session_scope(app.sessions) as session:
        # The relay's limits count meeting mail and newsletters together; what does not fit
        # now stays pending for the next round.
        room, _wait = app.sender.budget.room(session, now, limit)
        if room <= 0:
            return [], []
        ids = queries.claim_mails(
            session, now, limit=room, stale_before=now - CLAIM_LEASE, event_id=event_id
        )
        rows = queries.mails_with_people(session, ids)
        blocked = suppressed_keys(session, {person.email_key for _m, _e, person in rows})
        counts = queries.answer_counts(session, {event.id for _m, event, _p in rows})
        positions = queries.waiting_positions(
            session, {(event.id, person.id) for mail, event, person in rows
                      if mail.kind == "waitlist"}
        )
        owed: list[_Owed] = []
        skipped: list[int] = []
        calendars: dict[int, PersonalCalendar] = {}
        for mail, event, person in rows:
            # Nobody is mailed who left, bounced or is suppressed; nothing about a meeting
            # that is cancelled or (for anything but a late confirmation) already begun.
            if (
                person.status != "active"
                or person.email_key in blocked
                or event.status != "active"
                or (mail.kind in ("reminder", "nudge") and event.starts_at <= now)
            ):
                skipped.append(mail.id)
                continue
            rsvp = {
                answer: links.rsvp(person.public_id, event.id, answer)
                for answer in ("yes", "no", "maybe")
            }
            position = positions.get((event.id, person.id), 0)
            context = {
                "event": service.event_context(
                    event, seats=service.seats_left(event, counts[event.id]),
                    counts=counts[event.id],
                ),
                "name": person.name,
                "email": person.email,
                "rsvp_url": links.rsvp(person.public_id, event.id),
                "rsvp": rsvp,
                "position": position,
                "kind": mail.kind,
                "preferences_url": links.preferences(person.public_id),
            }
            if mail.kind in ("reminder", "nudge"):
                # Not asked for one by one: these carry List-Unsubscribe, like a campaign.
                context["unsubscribe_url"] = links.unsubscribe(person.public_id)
                context["unsubscribe_mailto_token"] = app.signer.mailto_token(person.id)
            calendar = None
            if mail.kind in _WITH_CALENDAR:
                # These go to people who said yes: their calendar shows them as accepted.
                meeting = calendars.get(event.id)
                if meeting is None:
                    meeting = calendars[event.id] = service.personal_calendar(
                        settings, app.signer, event, method=METHOD_REQUEST
                    )
                language = pick_language(person.language)
                calendar = (
                    meeting.text(person.name, person.email, person.id, language,
                                 PARTSTATS["yes"]),
                    meeting.filename(language),
                )
            owed.append(_Owed(mail.id, mail.kind, person.email, person.language,
                              mail.attempts, mail.first_attempt_at, context, calendar))
        if skipped:
            queries.set_mail_status(session, skipped, "skipped", now)
    return owed, skipped


def _compose(app: App, owed: _Owed) -> tuple[str, bytes]:
    from mailer.compose import build_transactional
    from mailer.compose.mime import CalendarBody

    calendar = CalendarBody(*owed.calendar) if owed.calendar is not None else None
    return build_transactional(
        TEMPLATES[owed.kind],
        to=owed.to,
        language=owed.language,
        context=owed.context,
        settings=app.settings,
        signer=app.signer,
        calendar=calendar,
        calendar_method=METHOD_REQUEST if calendar is not None else None,
    )


def send_owed_mail(
    app: App, *, event_id: int | None = None, limit: int = 200, now: dt.datetime | None = None
) -> SendReport:
    """Send owed meeting mail (all, or one event's) through the app's sender; what became of it.

    A refused address (5xx) fails the mail. A temporary refusal (4xx) keeps it owed, tried
    again with the campaign engine's backoff until the delivery deadline. A relay that cannot
    be reached leaves it owed and untried, for a later round.
    """
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    report = SendReport()
    owed, skipped = _claim(app, stamp, event_id, limit)
    report.skipped = len(skipped)
    verdicts: dict[int, Verdict] = {}
    ready: list[tuple[_Owed, Message]] = []
    for item in owed:
        try:
            envelope, data = _compose(app, item)
        except Exception as exc:  # a template or composition fault: keep it owed, say so
            log.exception("could not compose the %s mail", item.kind)
            verdicts[item.mail_id] = _judge(app, item, Outcome("temporary", 451, repr(exc)), stamp)
            continue
        ready.append((item, Message(envelope, item.to, data)))
    outcomes = app.sender.send_sync([message for _item, message in ready])
    for (item, _message), outcome in zip(ready, outcomes, strict=True):
        verdicts[item.mail_id] = _judge(app, item, outcome, stamp)
    released = [mail_id for mail_id, v in verdicts.items() if v.status == "released"]
    with session_scope(app.sessions) as session:
        queries.set_mail_status(
            session, [i for i, v in verdicts.items() if v.status == "sent"], "sent", stamp
        )
        for mail_id, verdict in verdicts.items():  # few: only refusals and deferrals
            if verdict.status in ("failed", "retry"):
                queries.set_mail_status(
                    session, [mail_id], "failed" if verdict.status == "failed" else "pending",
                    stamp, verdict.error, first_attempt_at=verdict.first_at,
                    next_attempt_at=verdict.next_at,
                )
        queries.release_mails(session, released)
    for verdict in verdicts.values():
        if verdict.status == "sent":
            report.sent += 1
            continue
        report.errors.append(verdict.error)
        if verdict.status == "failed":
            report.failed += 1
        else:
            report.retry += 1
    return report


def _judge(app: App, item: _Owed, outcome: Outcome, now: dt.datetime) -> Verdict:
    return judge(outcome, app.settings.delivery, attempts=item.attempts,
                 first_attempt_at=item.first_attempt_at, now=now)


def run_due_work(app: App, *, now: dt.datetime | None = None) -> tuple[int, SendReport]:
    """One round of the service: queue due reminders and nudges, then send all owed mail."""
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    with session_scope(app.sessions) as session:
        queued = service.queue_due_reminders(session, app.settings, now=stamp)
    report = SendReport()
    while True:
        batch = send_owed_mail(app, now=stamp)
        report.sent += batch.sent
        report.failed += batch.failed
        report.skipped += batch.skipped
        report.retry += batch.retry
        report.errors.extend(batch.errors)
        if batch.sent + batch.failed + batch.skipped == 0 or batch.retry:
            return queued, report


def due_work(app: App, now: dt.datetime) -> None:
    """`mailer run`'s due-work hook (App.due_work in mailer.app): reminders and owed meeting mail.

    The schedule lives in the database (event start times and `event_mails`), so reminders
    survive restarts: the first round after a restart catches up on whatever came due.
    """
    queued, report = run_due_work(app, now=now)
    if queued or report.sent or report.failed:
        log.info(
            "meeting mail: %d reminder(s) queued, %d sent, %d failed, %d to retry",
            queued, report.sent, report.failed, report.retry,
        )
