"""The outbox's SQL: queue, claim what is due, record outcomes, count for the relay budget,
forget what is long done."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from mailer.database import queries as queue
from mailer.delivery.models import OutboxMail

__all__ = [
    "queue_outbox",
    "claim_outbox",
    "outbox_messages",
    "record_outbox",
    "release_outbox",
    "outbox_in_window",
    "outbox_work_left",
    "delete_person_outbox",
    "purge_outbox",
]


def queue_outbox(session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime) -> list[int]:
    """Queue messages (kind, subscriber_id, envelope_from, recipient, data); their ids."""
    if not rows:
        return []
    values = [
        {"status": "pending", "attempts": 0, "last_error": "", "created_at": now,
         "subscriber_id": None, **row}
        for row in rows
    ]
    ids = session.scalars(insert(OutboxMail).returning(OutboxMail.id, sort_by_parameter_order=True),
                          values)
    return list(ids)


def claim_outbox(
    session: Session,
    now: dt.datetime,
    *,
    limit: int,
    stale_before: dt.datetime,
    ids: Collection[int] | None = None,
) -> list[int]:
    """Take up to `limit` due messages (status "sending"); their ids.

    Due: pending and past its retry time, or claimed by a sender that died before
    `stale_before`. The UPDATE re-checks that, so two senders never take the same row.
    """
    where = OutboxMail.id.in_(list(ids)) if ids is not None else None
    return queue.claim_due(session, OutboxMail, now, limit=limit, stale_before=stale_before,
                           where=where)


def outbox_messages(session: Session, ids: Collection[int]) -> list[dict[str, Any]]:
    """The claimed rows as plain dicts (id, kind, envelope_from, recipient, data, attempts,
    first_attempt_at), in id order."""
    if not ids:
        return []
    stmt = (
        select(OutboxMail.id, OutboxMail.kind, OutboxMail.envelope_from, OutboxMail.recipient,
               OutboxMail.data, OutboxMail.attempts, OutboxMail.first_attempt_at)
        .where(OutboxMail.id.in_(list(ids)))
        .order_by(OutboxMail.id)
    )
    return [dict(row._mapping) for row in session.execute(stmt)]


def record_outbox(session: Session, outcomes: Sequence[dict[str, Any]]) -> None:
    """Write outcomes in one executemany: each row b_id, b_status (sent, pending, failed),
    b_error, b_next (retry time or None), b_first, b_sent (or None).

    The message bytes go once a row is done; a deferred row keeps them for its retry.
    """
    if not outcomes:
        return
    done = [o for o in outcomes if o["b_status"] != "pending"]
    later = [o for o in outcomes if o["b_status"] == "pending"]
    table = cast(Table, OutboxMail.__table__)
    common = {
        "status": bindparam("b_status"),
        "attempts": table.c.attempts + 1,
        "last_error": bindparam("b_error"),
        "first_attempt_at": bindparam("b_first"),
        "next_attempt_at": bindparam("b_next"),
        "sent_at": bindparam("b_sent"),
    }
    where = table.c.id == bindparam("b_id")
    if done:
        session.connection().execute(table.update().where(where).values(**common, data=None),
                                     done)
    if later:
        session.connection().execute(table.update().where(where).values(**common), later)


def release_outbox(session: Session, ids: Collection[int]) -> None:
    """Hand claimed rows back untried (the relay could not be reached): no attempt counted."""
    if ids:
        session.execute(
            update(OutboxMail)
            .where(OutboxMail.id.in_(list(ids)), OutboxMail.status == "sending")
            .values(status="pending", claimed_at=None)
            .execution_options(synchronize_session=False)
        )


def outbox_in_window(session: Session, since: dt.datetime) -> tuple[int, dt.datetime | None]:
    """Outbox messages the relay took since `since` or in flight now, and the oldest send time
    among them: their share of the relay's limits."""
    return queue.in_relay_window(session, OutboxMail, since)


def outbox_work_left(session: Session, now: dt.datetime) -> tuple[int, int]:
    """(messages due now, messages waiting for a later retry)."""
    pending = OutboxMail.status == "pending"
    due = session.scalar(select(func.count()).where(
        pending, or_(OutboxMail.next_attempt_at.is_(None), OutboxMail.next_attempt_at <= now)
    )) or 0
    later = session.scalar(select(func.count()).where(
        pending, OutboxMail.next_attempt_at > now
    )) or 0
    return int(due), int(later)


def delete_person_outbox(session: Session, subscriber_id: int) -> None:
    """Forget a person's outbox rows (erasure): what is owed to them and the record of it."""
    session.execute(delete(OutboxMail).where(OutboxMail.subscriber_id == subscriber_id))


def purge_outbox(session: Session, before: dt.datetime) -> int:
    """Delete the rows done before `before` (sent then, or failed and queued then); how many.

    What is still owed (pending, sending) stays whatever its age: it is deleted only by being
    delivered, failing, or the person's erasure.
    """
    done_at = func.coalesce(OutboxMail.sent_at, OutboxMail.created_at)
    result = session.execute(
        delete(OutboxMail)
        .where(OutboxMail.status.in_(("sent", "failed")), done_at < before)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
