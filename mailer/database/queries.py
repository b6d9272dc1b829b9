"""The SQL the two queues of one-off mail share: meeting mail (`event_mails`) and the outbox.

Both hold one message a row through the same life (pending → sending → sent or failed, a 4xx
back to pending with `next_attempt_at`), are sent by the one sender and counted by the relay
budget, so taking what is due and counting the relay's window are one piece of SQL for both.
A queue's model has the columns `id`, `status`, `next_attempt_at`, `claimed_at`, `sent_at`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

__all__ = ["claim_due", "in_relay_window"]


def claim_due(
    session: Session,
    model: Any,
    now: dt.datetime,
    *,
    limit: int,
    stale_before: dt.datetime,
    where: ColumnElement[bool] | None = None,
) -> list[int]:
    """Take up to `limit` rows of `model` for sending (status "sending"); their ids, in order.

    Due: pending and past its retry time, or claimed by a sender that died before
    `stale_before`; `where` narrows the choice. The UPDATE re-checks that, so two senders never
    take the same row (PostgreSQL re-evaluates the WHERE on a row another transaction changed;
    SQLite runs one writer at a time).
    """
    if limit <= 0:
        return []
    claimable = (
        (model.status == "pending")
        & or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now)
    ) | ((model.status == "sending") & (model.claimed_at < stale_before))
    pick = select(model.id).where(claimable).order_by(model.id).limit(limit)
    if where is not None:
        pick = pick.where(where)
    wanted = list(session.scalars(pick))
    if not wanted:
        return []
    stmt = (
        update(model)
        .where(model.id.in_(wanted), claimable)
        .values(status="sending", claimed_at=now)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(stmt))


def in_relay_window(session: Session, model: Any, since: dt.datetime
                    ) -> tuple[int, dt.datetime | None]:
    """Rows of `model` the relay took since `since` or in flight now, and the oldest send time
    among them: the queue's share of the relay's limits."""
    # One statement, one snapshot: a row recorded between two counts would be in neither.
    is_sent = and_(model.status == "sent", model.sent_at >= since)
    stmt = select(func.count(), func.min(case((is_sent, model.sent_at)))).where(
        or_(is_sent, model.status == "sending")
    )
    count, oldest = session.execute(stmt).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return int(count or 0), oldest
