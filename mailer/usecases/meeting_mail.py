"""Sends the one-to-one mail meetings owe: RSVP confirmations, waiting-list notes, freed seats,
reminders and the nudge (adapter: composition + the SMTP transport).

The events domain queues what is owed in `event_mails`, in the transaction that decided it.
This module claims owed rows (short transaction), composes and sends each one outside any
transaction (so a slow relay never holds a database lock), and records the results in one
more short transaction. It runs after an answer on the RSVP page, from `mailer events
send-due`, and as `mailer run`'s due work (mailer.service.parts), which on every poll also
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
from mailer.delivery.relay_budget import RelayBudget
from mailer.errors import DeliveryError
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
# A temporary (4xx) failure is tried again on later rounds, up to this many attempts.
MAX_ATTEMPTS = 5


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
        room, _wait = RelayBudget(settings.smtp).room(session, now, limit)
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
                answer: links.rsvp(person.id, event.id, answer) for answer in ("yes", "no", "maybe")
            }
            position = positions.get((event.id, person.id), 0)
            context = {
                "event": service.event_context(
                    event, seats=service.seats_left(event, counts[event.id]),
                    counts=counts[event.id],
                ),
                "name": person.name,
                "email": person.email,
                "rsvp_url": links.rsvp(person.id, event.id),
                "rsvp": rsvp,
                "position": position,
                "kind": mail.kind,
                "preferences_url": links.preferences(person.id),
            }
            if mail.kind in ("reminder", "nudge"):
                # Not asked for one by one: these carry List-Unsubscribe, like a campaign.
                context["unsubscribe_url"] = links.unsubscribe(person.id)
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
                              mail.attempts, context, calendar))
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
    """Send owed meeting mail (all, or one event's); what became of it.

    A refused address (5xx) fails the mail; a temporary refusal or a relay that cannot be
    reached leaves it owed for a later round, up to MAX_ATTEMPTS.
    """
    from mailer.delivery.transport import is_permanent, send_message_sync

    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    report = SendReport()
    owed, skipped = _claim(app, stamp, event_id, limit)
    report.skipped = len(skipped)
    sent: list[int] = []
    failed: dict[int, str] = {}
    retry: dict[int, str] = {}
    released: list[int] = []
    for index, item in enumerate(owed):
        try:
            envelope, data = _compose(app, item)
            send_message_sync(app.settings, envelope, [item.to], data)
        except DeliveryError as exc:
            code = exc.code
            if code is None:
                # The relay cannot be reached: stop this round, count nothing against the
                # mails; they go out on a later round.
                released = [o.mail_id for o in owed[index:]]
                report.errors.append(str(exc))
                break
            if is_permanent(code) or item.attempts + 1 >= MAX_ATTEMPTS:
                failed[item.mail_id] = str(exc)
            else:
                retry[item.mail_id] = str(exc)
            continue
        except Exception as exc:  # a template or composition fault: keep it owed, say so
            log.exception("could not compose the %s mail", item.kind)
            retry[item.mail_id] = f"{type(exc).__name__}: {exc}"
            continue
        sent.append(item.mail_id)
    with session_scope(app.sessions) as session:
        queries.set_mail_status(session, sent, "sent", stamp)
        for mail_id, error in failed.items():  # few: only refused addresses
            queries.set_mail_status(session, [mail_id], "failed", stamp, error)
        for mail_id, error in retry.items():
            queries.set_mail_status(session, [mail_id], "pending", stamp, error)
        queries.release_mails(session, released)
    report.sent, report.failed = len(sent), len(failed)
    report.retry = len(retry) + len(released)
    report.errors = [*failed.values(), *retry.values(), *report.errors]
    return report


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
    """`mailer run`'s due-work hook (mailer.service.parts): reminders and owed meeting mail.

    The schedule lives in the database (event start times and `event_mails`), so reminders
    survive restarts: the first round after a restart catches up on whatever came due.
    """
    queued, report = run_due_work(app, now=now)
    if queued or report.sent or report.failed:
        log.info(
            "meeting mail: %d reminder(s) queued, %d sent, %d failed, %d to retry",
            queued, report.sent, report.failed, report.retry,
        )
