"""Every SQL statement of the events package, as named functions.

The service composes these. Statements work on whole sets (all answers of a meeting, all
people owed a reminder) so nothing queries once per person. People are read through
`subscribers.queries`, never selected or joined here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Select,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union,
    update,
)
from sqlalchemy.orm import Session

from mailer.campaigns import queries as campaign_queries
from mailer.campaigns.models import Campaign, Delivery
from mailer.database import queries as queue
from mailer.events.models import CalendarReply, Event, EventMail, Rsvp, RsvpChange
from mailer.kernel.mentions import Needles, mentions
from subscribers import queries as subscriber_queries
from subscribers.models import Subscriber

__all__ = [
    "AnswerCounts",
    "event_by_id",
    "events_by_ids",
    "lock_event",
    "all_events",
    "events_between",
    "answer_counts",
    "rsvp_of",
    "seats_taken",
    "first_waiting",
    "waiting_position",
    "waiting_positions",
    "add_change",
    "attendee_rows",
    "invited_ids",
    "not_declined_ids",
    "non_responder_ids",
    "yes_ids",
    "snapshot_not_declined",
    "queue_mails",
    "claim_mails",
    "mails_with_people",
    "set_mail_status",
    "release_mails",
    "drop_pending_mails",
    "active_future_events",
    "event_campaigns",
    "answers_of_person",
    "delete_person_rows",
    "replies_mentioning",
    "reply_by_fingerprint",
    "add_reply",
    "recent_replies",
]


@dataclass(frozen=True)
class AnswerCounts:
    yes: int = 0
    no: int = 0
    maybe: int = 0
    waiting: int = 0


def event_by_id(session: Session, event_id: int) -> Event | None:
    return session.get(Event, event_id)


def events_by_ids(session: Session, event_ids: Collection[int]) -> list[Event]:
    if not event_ids:
        return []
    return list(session.scalars(select(Event).where(Event.id.in_(set(event_ids)))))


def lock_event(session: Session, event_id: int) -> Event | None:
    """The event, with its row locked until the transaction ends.

    Every change to the seats of an event takes this lock first, so two answers for the last
    seat are decided one after the other. PostgreSQL: SELECT ... FOR UPDATE. SQLite ignores
    FOR UPDATE, but its BEGIN IMMEDIATE (database.connect) already serialises writing transactions.
    `populate_existing` makes sure we read the row as it is now, not as this session cached it.
    """
    stmt = (
        select(Event)
        .where(Event.id == event_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(stmt)


def all_events(session: Session, *, include_past: bool, now: dt.datetime) -> list[Event]:
    stmt = select(Event).order_by(Event.starts_at, Event.id)
    if not include_past:
        stmt = stmt.where(Event.ends_at >= now)
    return list(session.scalars(stmt))


def events_between(session: Session, start: dt.datetime, end: dt.datetime) -> list[Event]:
    """Meetings that start in [start, end), cancelled ones too (a calendar shows them struck)."""
    stmt = (select(Event).where(Event.starts_at >= start, Event.starts_at < end)
            .order_by(Event.starts_at, Event.id))
    return list(session.scalars(stmt))


def answer_counts(session: Session, event_ids: Collection[int]) -> dict[int, AnswerCounts]:
    """Yes (with a seat), no, maybe and waiting, for many events in one query."""
    ids = list(event_ids)
    result = {eid: AnswerCounts() for eid in ids}
    if not ids:
        return result
    seated = (Rsvp.answer == "yes") & Rsvp.waiting.is_(False)
    stmt = (
        select(
            Rsvp.event_id,
            func.count().filter(seated),
            func.count().filter(Rsvp.answer == "no"),
            func.count().filter(Rsvp.answer == "maybe"),
            func.count().filter(Rsvp.waiting.is_(True)),
        )
        .where(Rsvp.event_id.in_(ids))
        .group_by(Rsvp.event_id)
    )
    for eid, yes, no, maybe, waiting in session.execute(stmt):
        result[eid] = AnswerCounts(yes=yes, no=no, maybe=maybe, waiting=waiting)
    return result


def rsvp_of(session: Session, event_id: int, subscriber_id: int) -> Rsvp | None:
    return session.scalar(
        select(Rsvp)
        .where(Rsvp.event_id == event_id, Rsvp.subscriber_id == subscriber_id)
        .execution_options(populate_existing=True)
    )


def seats_taken(session: Session, event_id: int) -> int:
    stmt = select(func.count()).where(
        Rsvp.event_id == event_id, Rsvp.answer == "yes", Rsvp.waiting.is_(False)
    )
    return int(session.scalar(stmt) or 0)


def first_waiting(session: Session, event_id: int, limit: int) -> list[Rsvp]:
    """The first `limit` people on the waiting list, longest waiting first."""
    if limit <= 0:
        return []
    stmt = (
        select(Rsvp)
        .where(Rsvp.event_id == event_id, Rsvp.waiting.is_(True))
        .order_by(Rsvp.waiting_since, Rsvp.id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(stmt))


def waiting_position(session: Session, rsvp: Rsvp) -> int:
    """1 for the first on the waiting list; 0 if not waiting."""
    if not rsvp.waiting or rsvp.waiting_since is None:
        return 0
    ahead = select(func.count()).where(
        Rsvp.event_id == rsvp.event_id,
        Rsvp.waiting.is_(True),
        (Rsvp.waiting_since < rsvp.waiting_since)
        | ((Rsvp.waiting_since == rsvp.waiting_since) & (Rsvp.id < rsvp.id)),
    )
    return int(session.scalar(ahead) or 0) + 1


def waiting_positions(
    session: Session, pairs: Collection[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """Waiting-list places for many (event id, subscriber id) pairs in one query."""
    if not pairs:
        return {}
    events = {event_id for event_id, _sid in pairs}
    place = (
        func.row_number()
        .over(partition_by=Rsvp.event_id, order_by=(Rsvp.waiting_since, Rsvp.id))
        .label("place")
    )
    ranked = (
        select(Rsvp.event_id, Rsvp.subscriber_id, place)
        .where(Rsvp.event_id.in_(events), Rsvp.waiting.is_(True))
        .subquery()
    )
    found = {
        (event_id, sid): int(n)
        for event_id, sid, n in session.execute(select(ranked))
    }
    return {pair: found.get(pair, 0) for pair in pairs}


def add_change(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Append answers to the history (rsvp_id, answer, waiting, source, at) in one statement."""
    if rows:
        session.execute(insert(RsvpChange), list(rows))


def attendee_rows(session: Session, event_id: int) -> list[dict[str, Any]]:
    """Everyone who answered, with what the attendee list shows, seated first.

    Yes, no, maybe; seated before waiting; longest waiting first; then by name and id. Two
    queries whatever the size of the meeting: the answers, ranked by the database, and the
    people who gave them, ordered by name by `subscribers.queries`; combined here.
    """
    place = (
        func.dense_rank()
        .over(order_by=(Rsvp.answer.desc(), Rsvp.waiting, Rsvp.waiting_since))  # yes first
        .label("place")
    )
    answers = session.execute(
        select(
            Rsvp.subscriber_id,
            Rsvp.answer,
            Rsvp.waiting,
            Rsvp.waiting_since,
            Rsvp.answered_at,
            place,
        ).where(Rsvp.event_id == event_id)
    ).all()
    answered = select(Rsvp.subscriber_id).where(Rsvp.event_id == event_id)
    people = subscriber_queries.contact_rows_by_name(session, answered)
    by_name = {person["id"]: (rank, person) for rank, person in enumerate(people)}
    rows = []
    for answer in answers:
        if answer.subscriber_id not in by_name:
            continue
        rank, person = by_name[answer.subscriber_id]
        row = {
            "subscriber_id": person["id"],
            "name": person["name"],
            "email": person["email"],
            "organisation": person["organisation"],
            "region": person["region"],
            "answer": answer.answer,
            "waiting": answer.waiting,
            "waiting_since": answer.waiting_since,
            "answered_at": answer.answered_at,
        }
        rows.append(((answer.place, rank), row))
    rows.sort(key=lambda pair: pair[0])
    return [row for _key, row in rows]


def invited_ids(event_id: int) -> Select[Any]:
    """Subscriber ids that were sent an invitation to the event, or answered it anyway."""
    sent = (
        select(Delivery.subscriber_id.label("subscriber_id"))
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(
            Campaign.event_id == event_id,
            Campaign.kind == "invitation",
            Delivery.status == "sent",
            Delivery.subscriber_id.is_not(None),
        )
    )
    answered = select(Rsvp.subscriber_id.label("subscriber_id")).where(Rsvp.event_id == event_id)
    return select(union(sent, answered).subquery().c.subscriber_id)


def not_declined_ids(event_id: int) -> Select[Any]:
    """Everyone invited who has not said no: who must hear of a change or cancellation."""
    invited = invited_ids(event_id).subquery()
    declined = select(Rsvp.subscriber_id).where(Rsvp.event_id == event_id, Rsvp.answer == "no")
    return select(invited.c.subscriber_id).where(invited.c.subscriber_id.not_in(declined))


def non_responder_ids(event_id: int) -> Select[Any]:
    """Invited people who have not answered at all (the nudge)."""
    invited = invited_ids(event_id).subquery()
    answered = select(Rsvp.subscriber_id).where(Rsvp.event_id == event_id)
    return select(invited.c.subscriber_id).where(invited.c.subscriber_id.not_in(answered))


def yes_ids(event_id: int, *, answered_before: dt.datetime | None = None) -> Select[Any]:
    """People with a seat (a yes, not waiting), optionally only those who answered in time."""
    stmt = select(Rsvp.subscriber_id).where(
        Rsvp.event_id == event_id, Rsvp.answer == "yes", Rsvp.waiting.is_(False)
    )
    if answered_before is not None:
        stmt = stmt.where(Rsvp.answered_at <= answered_before)
    return stmt


def snapshot_not_declined(session: Session, campaign_id: int, event_id: int) -> int:
    """Queue a delivery of the campaign for everyone invited who has not declined.

    The campaigns package writes the deliveries; this hands it who (people no longer active or
    on the suppression list are left out).
    """
    wanted = not_declined_ids(event_id).subquery()
    people = subscriber_queries.mailable_people_select(select(wanted.c.subscriber_id)).subquery()
    return campaign_queries.queue_people(session, campaign_id, select(people.c.id, people.c.email))


def queue_mails(
    session: Session,
    event_id: int,
    kind: str,
    key: str,
    subscriber_ids: Select[Any] | Collection[int],
    now: dt.datetime,
) -> int:
    """Owe each of these people one `kind` mail under `key`, unless already owed or sent.

    One INSERT ... SELECT; the NOT EXISTS (and the unique key behind it) make it idempotent.
    """
    if isinstance(subscriber_ids, Select):
        ids = subscriber_ids.subquery()
        source = select(ids.c[0].label("sid"))
    else:
        wanted = list(subscriber_ids)
        if not wanted:
            return 0
        source = subscriber_queries.known_ids_select(wanted)
    src = source.subquery()
    already = exists(
        select(EventMail.id).where(
            EventMail.event_id == event_id,
            EventMail.subscriber_id == src.c.sid,
            EventMail.key == key,
        )
    )
    rows = select(
        literal(event_id),
        src.c.sid,
        literal(kind),
        literal(key),
        literal("pending"),
        literal(0),
        literal(""),
        literal(now, type_=EventMail.__table__.c.created_at.type),
    ).where(~already)
    stmt = insert(EventMail).from_select(
        ["event_id", "subscriber_id", "kind", "key", "status", "attempts", "last_error",
         "created_at"],
        rows,
    ).returning(EventMail.id)
    # Counted from RETURNING: psycopg reports no rowcount for INSERT ... SELECT.
    return len(session.scalars(stmt).all())


def claim_mails(
    session: Session,
    now: dt.datetime,
    *,
    limit: int,
    stale_before: dt.datetime,
    event_id: int | None = None,
) -> list[int]:
    """Take up to `limit` owed mails for sending (status "sending"); their ids.

    Also takes mails a crashed sender claimed before `stale_before`. The UPDATE re-checks the
    status, so two senders never take the same mail (PostgreSQL re-evaluates the WHERE on a row
    another transaction changed; SQLite runs one writer at a time).
    """
    where = EventMail.event_id == event_id if event_id is not None else None
    return queue.claim_due(session, EventMail, now, limit=limit, stale_before=stale_before,
                           where=where)


def mails_in_window(session: Session, since: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Meeting mails handed to the relay since `since` or in flight now, and the oldest send
    time among them: their share of the relay's limits."""
    return queue.in_relay_window(session, EventMail, since)


def mails_with_people(
    session: Session, mail_ids: Collection[int]
) -> list[tuple[EventMail, Event, Subscriber]]:
    """The claimed mails with their event and person, by mail id, in two queries.

    The mails with their events, then their people through `subscribers.queries`; all read
    afresh, so a person who left or bounced a moment ago is seen as such.
    """
    if not mail_ids:
        return []
    stmt = (
        select(EventMail, Event)
        .join(Event, Event.id == EventMail.event_id)
        .where(EventMail.id.in_(list(mail_ids)))
        .order_by(EventMail.id)
        .execution_options(populate_existing=True)
    )
    mails = [(row[0], row[1]) for row in session.execute(stmt)]
    people = subscriber_queries.subscribers_by_ids(
        session, {mail.subscriber_id for mail, _event in mails}, refresh=True
    )
    return [
        (mail, event, people[mail.subscriber_id])
        for mail, event in mails
        if mail.subscriber_id in people
    ]


def set_mail_status(
    session: Session,
    mail_ids: Collection[int],
    status: str,
    now: dt.datetime,
    error: str = "",
    *,
    first_attempt_at: dt.datetime | None = None,
    next_attempt_at: dt.datetime | None = None,
) -> None:
    """Record a try: its status, and for a retry when (next_attempt_at); the first try's time
    is kept once set (first_attempt_at, else now)."""
    if not mail_ids:
        return
    values: dict[str, Any] = {
        "status": status,
        "attempts": EventMail.attempts + 1,
        "first_attempt_at": func.coalesce(EventMail.first_attempt_at, first_attempt_at or now),
        "next_attempt_at": next_attempt_at,
    }
    if status == "sent":
        values["sent_at"] = now
    if error:
        values["last_error"] = error[:2000]
    session.execute(
        update(EventMail)
        .where(EventMail.id.in_(list(mail_ids)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def release_mails(session: Session, mail_ids: Collection[int]) -> None:
    """Hand claimed mails back unsent (the relay was unreachable): no attempt is counted."""
    if mail_ids:
        session.execute(
            update(EventMail)
            .where(EventMail.id.in_(list(mail_ids)), EventMail.status == "sending")
            .values(status="pending", claimed_at=None)
            .execution_options(synchronize_session=False)
        )


def drop_pending_mails(
    session: Session,
    event_id: int,
    kinds: Collection[str],
    subscriber_ids: Collection[int] | None = None,
) -> None:
    """Forget owed mail that no longer makes sense: reminders for an old time, everything of a
    cancelled meeting, a confirmation the person has since taken back (only theirs, if given).
    """
    stmt = delete(EventMail).where(
        EventMail.event_id == event_id,
        EventMail.status == "pending",
        EventMail.kind.in_(list(kinds)),
    )
    if subscriber_ids is not None:
        stmt = stmt.where(EventMail.subscriber_id.in_(list(subscriber_ids)))
    session.execute(stmt)


def active_future_events(session: Session, now: dt.datetime) -> list[Event]:
    """Active events that have not started: the few a reminder round looks at."""
    stmt = (
        select(Event)
        .where(Event.status == "active", Event.starts_at > now)
        .order_by(Event.starts_at, Event.id)
    )
    return list(session.scalars(stmt))


def event_campaigns(session: Session, event_id: int) -> list[Campaign]:
    stmt = select(Campaign).where(Campaign.event_id == event_id).order_by(Campaign.id)
    return list(session.scalars(stmt))


def answers_of_person(session: Session, subscriber_id: int) -> list[tuple[Rsvp, Event]]:
    """One person's answers with their meetings, oldest meeting first (access and erasure)."""
    stmt = (
        select(Rsvp, Event)
        .join(Event, Event.id == Rsvp.event_id)
        .where(Rsvp.subscriber_id == subscriber_id)
        .order_by(Event.starts_at, Event.id)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def replies_mentioning(session: Session, needles: Needles) -> list[CalendarReply]:
    """Kept calendar replies whose raw text (MIME-decoded) or stored fields mention the person;
    searched in chunks here, as bounces.queries.messages_mentioning does."""
    stmt = (select(CalendarReply.id, CalendarReply.raw, CalendarReply.from_header,
                   CalendarReply.subject, CalendarReply.attendee, CalendarReply.reason)
            .execution_options(yield_per=200))
    ids = [row.id for row in session.execute(stmt)
           if mentions(None if row.raw is None else bytes(row.raw), needles,
                       (row.from_header, row.subject, row.attendee, row.reason))]
    if not ids:
        return []
    return list(session.scalars(select(CalendarReply).where(CalendarReply.id.in_(ids))
                                .order_by(CalendarReply.id)))


def delete_person_rows(session: Session, subscriber_id: int, email_key: str = "",
                       needles: Needles | None = None) -> None:
    """Remove a person's answers (with their history) and owed meeting mail; calendar replies
    from them, matched, naming their address or mentioning them (`needles`: address, name,
    phone, in any MIME part) lose address, subject, reason and raw text."""
    session.execute(delete(EventMail).where(EventMail.subscriber_id == subscriber_id))
    session.execute(delete(Rsvp).where(Rsvp.subscriber_id == subscriber_id))
    theirs = CalendarReply.subscriber_id == subscriber_id
    if email_key:
        theirs = (theirs | (func.lower(CalendarReply.attendee).contains(email_key, autoescape=True))
                  | (func.lower(CalendarReply.from_header).contains(email_key, autoescape=True)))
    if needles or email_key:
        mentioning = [r.id for r in replies_mentioning(session, needles or Needles.of(email_key))]
        if mentioning:
            theirs = theirs | CalendarReply.id.in_(mentioning)
    session.execute(
        update(CalendarReply).where(theirs)
        .values(subscriber_id=None, attendee="", from_header="", subject="", reason="",
                raw=None)
        .execution_options(synchronize_session=False)
    )


# -- answers from calendars --------------------------------------------------------------------


def reply_by_fingerprint(session: Session, fingerprint: str) -> CalendarReply | None:
    stmt = select(CalendarReply).where(CalendarReply.fingerprint == fingerprint)
    return session.scalars(stmt).first()


def add_reply(session: Session, reply: CalendarReply) -> bool:
    """Store an arrived reply; False if the same message was stored a moment ago (a race of
    two intakes), in which case nothing is stored."""
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.add(reply)
            session.flush()
    except IntegrityError:
        return False
    return True


def recent_replies(
    session: Session, *, outcome: str | None = None, limit: int = 50
) -> list[CalendarReply]:
    """The newest arrived replies, optionally only those recorded or kept for review."""
    stmt = select(CalendarReply).order_by(CalendarReply.id.desc()).limit(limit)
    if outcome is not None:
        stmt = stmt.where(CalendarReply.outcome == outcome)
    return list(session.scalars(stmt))
