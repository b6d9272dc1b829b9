"""Answers from calendars: an iTIP REPLY recorded exactly as the RSVP page records an answer.

The invitation's ORGANIZER is the person's signed reply address (tokens.Signer.reply_address),
so a REPLY names who answers and for which meeting without trusting anything else in it (both
shapes: the sealed ids of new meetings, and the base36 ids with a MAC that meetings from before
migration 0014 keep, Event.organizer_format). It changes the answer only when everything
agrees: a valid token, the meeting's UID, exactly one ATTENDEE and that attendee is the person
the token names, a PARTSTAT that is an answer. Then `service.rsvp` decides as for the page
(deadline, capacity, waiting list, owed confirmation, history with source "calendar").
Anything else changes nothing and is kept for review.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

from sqlalchemy.orm import Session

from mailer.errors import EventError, NotFoundError, TokenError
from mailer.events import queries, service
from mailer.events.itip import PARTSTAT_ANSWERS, CalendarReply, find_reply
from mailer.events.models import CalendarReply as ReplyRow
from mailer.kernel.tokens import Signer
from mailer.settings import Settings
from subscribers import queries as subscriber_queries

__all__ = ["ReplyResult", "take_reply", "list_replies", "SOURCE"]

#: The rsvp_changes source of an answer given in a calendar.
SOURCE = "calendar"
MAX_RAW = 1024 * 1024
_TRACE = re.compile(rb"^(received|return-path|delivered-to|x-[a-z0-9-]+):", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyResult:
    """What one arrived REPLY became."""

    outcome: str  # "recorded", "review" or "duplicate"
    reason: str = ""
    event_id: int | None = None
    answer: service.Answer | None = None


def _fingerprint(raw: bytes) -> str:
    """A hash of the message without the trace headers each hop adds (as the bounce intake)."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = [line for line in head.split(b"\n") if line and not line[:1].isspace()]
    kept = b"\n".join(line for line in lines if not _TRACE.match(line))
    return hashlib.sha256(kept + b"\n\n" + body).hexdigest()


def _token(signer: Signer, reply: CalendarReply, recipients: Sequence[str], prefix: str
           ) -> tuple[tuple[int, int] | None, bool | None]:
    """(subscriber id, event id) the reply addresses name, and whether they were valid.

    The calendar's ORGANIZER (every REPLY echoes it) and the addresses the message was
    delivered to (envelope, To, Cc) must agree: a forged token anywhere, or two tokens naming
    different people or meetings, and the reply is not taken.
    """
    found: set[tuple[int, int]] = set()
    forged = False
    for address in (reply.organizer, *recipients):
        if "+" not in address:
            continue
        try:
            found.add(signer.parse_reply_address(address, prefix))
        except TokenError as exc:
            forged = forged or "signature" in str(exc)
    if forged or len(found) > 1:
        return None, False
    if not found:
        return None, None
    return found.pop(), True


def _recipients(msg: Message, envelope_to: Sequence[str]) -> list[str]:
    headers = [str(v) for name in ("To", "Cc", "Delivered-To") for v in msg.get_all(name, [])]
    return [*envelope_to, *(addr for _n, addr in email.utils.getaddresses(headers) if addr)]


def _decide(session: Session, settings: Settings, signer: Signer, reply: CalendarReply,
            recipients: Sequence[str], row: ReplyRow, now: dt.datetime) -> ReplyResult:
    if reply.problem:
        return ReplyResult("review", reply.problem)
    found, valid = _token(signer, reply, recipients, settings.events.reply_prefix)
    row.token_valid = valid
    if found is None:
        why = ("the reply address's token is not valid (or two disagree)" if valid is False
               else "no reply token")
        return ReplyResult("review", why)
    subscriber_id, event_id = found
    person = subscriber_queries.subscriber_by_id(session, subscriber_id)
    event = queries.event_by_id(session, event_id)
    if person is None or event is None:
        return ReplyResult("review", "the person or the meeting no longer exists")
    row.subscriber_id, row.event_id = person.id, event.id
    if reply.uid != event.uid:
        return ReplyResult("review", "the reply is about another meeting (UID)", event.id)
    if len(reply.attendees) != 1:
        return ReplyResult("review", f"a REPLY must name one attendee, not "
                           f"{len(reply.attendees)}", event.id)
    if reply.sequence > event.sequence:
        return ReplyResult("review", "the reply names a version of the meeting we never sent",
                           event.id)
    address, partstat = reply.attendees[0]
    if address != person.email.strip().lower():
        return ReplyResult("review", "the reply is from another attendee than the one invited",
                           event.id)
    answer = PARTSTAT_ANSWERS.get(partstat)
    if answer is None:
        return ReplyResult("review", f"PARTSTAT {partstat} is not an answer", event.id)
    if person.status != "active":
        return ReplyResult("review", f"the person is {person.status}", event.id)
    try:
        with session.begin_nested():
            outcome = service.rsvp(session, settings, event.id, person.id, answer, now=now,
                                   source=SOURCE)
    except (EventError, NotFoundError) as exc:
        return ReplyResult("review", str(exc), event.id)
    return ReplyResult("recorded", f"answer {answer}" + (" (waiting list)" if outcome.waiting
                                                         else ""), event.id, outcome)


def take_reply(
    session: Session,
    settings: Settings,
    signer: Signer,
    raw: bytes,
    *,
    source: str,
    envelope_to: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> ReplyResult | None:
    """Record the calendar REPLY in an arrived message; None if it carries none (a bounce)."""
    reply, msg = find_reply(raw)
    if reply is None:
        return None
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    fingerprint = _fingerprint(raw)
    if queries.reply_by_fingerprint(session, fingerprint) is not None:
        return ReplyResult("duplicate")
    attendee, partstat = reply.attendees[0] if reply.attendees else ("", "")
    row = ReplyRow(
        received_at=stamp, source=source[:16], fingerprint=fingerprint,
        from_header=str(msg.get("From", ""))[:998], subject=str(msg.get("Subject", ""))[:998],
        uid=reply.uid[:255], attendee=attendee[:320], partstat=partstat[:32],
        prodid=reply.prodid, outcome="review", raw=raw[:MAX_RAW],
    )
    if not queries.add_reply(session, row):
        return ReplyResult("duplicate")
    result = _decide(session, settings, signer, reply, _recipients(msg, envelope_to), row, stamp)
    row.outcome, row.reason = result.outcome, result.reason[:2000]
    session.flush()
    return result


def list_replies(session: Session, *, review_only: bool = False, limit: int = 50
                 ) -> list[dict[str, object]]:
    """The newest answers that came from calendars, as plain values (`mailer events replies`)."""
    rows = queries.recent_replies(session, outcome="review" if review_only else None,
                                  limit=limit)
    return [
        {"id": r.id, "received_at": r.received_at, "source": r.source, "outcome": r.outcome,
         "reason": r.reason, "event_id": r.event_id, "attendee": r.attendee,
         "partstat": r.partstat, "client": r.prodid, "from": r.from_header,
         "subject": r.subject}
        for r in rows
    ]
