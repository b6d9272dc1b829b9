"""Every SQL statement on campaigns and deliveries, as named functions taking whole sets.

The delivery engine claims and records deliveries in batches through these; nothing else builds
queries on these tables. No function here runs once per recipient.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mailer.campaigns.models import Campaign, Delivery, DeliveryWorker, DomainPause, Segment
from subscribers.models import Subscriber
from subscribers.queries import SubscriberFilter, audience_select, mailing_data

__all__ = [
    "active_pauses",
    "add_pauses",
    "resume_pause",
    "not_paused",
    "waiting_by_paused_domain",
    "campaign_by_id",
    "campaigns_list",
    "campaigns_by_ids",
    "due_campaigns",
    "scheduled_campaigns",
    "set_campaign_status",
    "queue_people",
    "snapshot_audience",
    "count_audience",
    "audience_sample",
    "segment_by_name",
    "segments",
    "delivery_counts",
    "delivery_counts_many",
    "campaigns_page",
    "count_campaigns",
    "next_scheduled",
    "campaigns_between",
    "campaigns_sending_since",
    "sent_series",
    "sent_series_since",
    "sent_in_period",
    "epoch_bucket",
    "series_step",
    "sent_since",
    "claim_batch",
    "recipient_rows",
    "mark_sent",
    "mark_deferred",
    "mark_failed",
    "mark_skipped",
    "renew_lease",
    "requeue",
    "release_campaign",
    "finish_done_campaigns",
    "work_left",
    "in_window",
    "lock_rate_window",
    "bound_statement_time",
    "register_worker",
    "beat_worker",
    "drop_worker",
    "workers",
    "held_worker_locks",
    "release_workers",
    "campaign_statuses",
    "pause_for_outage",
    "resume_after_outage",
    "clear_outage",
]

#: The PostgreSQL advisory lock class (first key) that delivery workers hold for their lifetime;
#: the second key is the worker's delivery_workers.id.
WORKER_LOCK_CLASS = 784513

# Statuses a delivery can still leave (the campaign is not done while any remain).
OPEN_STATUSES = ("queued", "sending", "deferred")


def campaign_by_id(session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def campaigns_by_ids(session: Session, campaign_ids: Collection[int]) -> list[Campaign]:
    """The campaigns with these ids (one query; for showing their subjects)."""
    if not campaign_ids:
        return []
    return list(session.scalars(select(Campaign).where(Campaign.id.in_(set(campaign_ids)))))


def campaigns_list(session: Session, statuses: Collection[str] = ()) -> list[Campaign]:
    stmt = select(Campaign).order_by(Campaign.id.desc())
    if statuses:
        stmt = stmt.where(Campaign.status.in_(list(statuses)))
    return list(session.scalars(stmt))


def scheduled_campaigns(session: Session) -> list[tuple[int, dt.datetime]]:
    """(id, scheduled_at) of every campaign waiting for its time."""
    stmt = select(Campaign.id, Campaign.scheduled_at).where(
        Campaign.status == "scheduled", Campaign.scheduled_at.is_not(None)
    )
    return [(cid, at) for cid, at in session.execute(stmt) if at is not None]


def due_campaigns(session: Session, now: dt.datetime) -> list[tuple[int, dt.datetime]]:
    """(id, scheduled_at) of scheduled campaigns whose time has come, oldest first."""
    stmt = (
        select(Campaign.id, Campaign.scheduled_at)
        .where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
        .order_by(Campaign.scheduled_at, Campaign.id)
    )
    return [(cid, at) for cid, at in session.execute(stmt) if at is not None]


def set_campaign_status(
    session: Session,
    campaign_id: int,
    new_status: str,
    *,
    from_statuses: Collection[str],
    **values: Any,
) -> bool:
    """Move a campaign to `new_status` only if it is in one of `from_statuses` (atomic).

    The conditional UPDATE is what makes starting a campaign happen once, however many
    schedulers or commands race for it.
    """
    stmt = (
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_(list(from_statuses)))
        .values(status=new_status, updated_at=func.now(), **values)
        .execution_options(synchronize_session=False)
    )
    result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    return bool(result.rowcount)


def _audience_filter(audience: dict[str, Any]) -> SubscriberFilter:
    return SubscriberFilter(
        lists=tuple(audience.get("lists") or ()),
        regions=tuple(audience.get("regions") or ()),
        organisations=tuple(audience.get("organisations") or ()),
        languages=tuple(audience.get("languages") or ()),
        job_titles=tuple(audience.get("job_titles") or ()),
        attributes={str(k): tuple(v) for k, v in (audience.get("attributes") or {}).items()},
    )


def count_audience(session: Session, audience: dict[str, Any]) -> int:
    # Without the snapshot's ORDER BY: a count need not sort 100,000 ids first.
    sub = audience_select(_audience_filter(audience)).order_by(None).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


def audience_sample(session: Session, audience: dict[str, Any], limit: int = 10
                    ) -> list[tuple[str, str]]:
    """(name, organisation) of the first people of an audience, by id: who is in it."""
    ids = audience_select(_audience_filter(audience)).limit(limit).subquery()
    stmt = (select(Subscriber.name, Subscriber.organisation)
            .join(ids, ids.c.id == Subscriber.id).order_by(Subscriber.id))
    return [(name, organisation) for name, organisation in session.execute(stmt)]


def segment_by_name(session: Session, name: str) -> Segment | None:
    return session.scalar(select(Segment).where(func.lower(Segment.name) == name.lower()))


def segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def queue_people(session: Session, campaign_id: int, people: Select[Any]) -> int:
    """Queue a delivery of the campaign for each person `people` selects (columns: subscriber
    id, email), in id order, in one INSERT ... SELECT; how many were queued. For recipients
    another package decides (the meeting's invitees who have not declined)."""
    chosen = people.subquery()
    id_column, email_column = chosen.c
    source = select(
        literal(campaign_id), id_column, email_column, literal("queued"), literal(0),
        literal(""), literal(""), literal(""),
    ).order_by(id_column)
    stmt = insert(Delivery).from_select(
        ["campaign_id", "subscriber_id", "email", "status", "attempts", "claimed_by",
         "last_error", "message_id"],
        source,
    ).returning(Delivery.id)
    return len(session.scalars(stmt).all())


def snapshot_audience(session: Session, campaign_id: int, audience: dict[str, Any]) -> int:
    """One INSERT ... SELECT: a queued delivery per recipient; running it twice adds nothing."""
    sub = audience_select(_audience_filter(audience)).subquery()
    source = select(literal(campaign_id), sub.c.id, sub.c.email, literal("queued"), literal(0),
                    literal(""), literal(""), literal("")).where(true())
    # (SQLite needs the WHERE: "SELECT ... FROM t ON CONFLICT" would parse ON as a join.)
    columns = ["campaign_id", "subscriber_id", "email", "status", "attempts", "claimed_by",
               "last_error", "message_id"]
    dialect = session.get_bind().dialect.name
    table = cast(Table, Delivery.__table__)
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(table).from_select(columns, source).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite_insert(table).from_select(columns, source).on_conflict_do_nothing()
    else:  # pragma: no cover - only the two supported backends
        stmt = insert(table).from_select(columns, source)
    session.execute(stmt)
    # The campaign's recipients (rowcount of INSERT ... SELECT is not reliable on every driver).
    total = select(func.count()).where(Delivery.campaign_id == campaign_id)
    return int(session.scalar(total) or 0)


def delivery_counts(session: Session, campaign_id: int) -> dict[str, int]:
    stmt = (
        select(Delivery.status, func.count())
        .where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.status)
    )
    return {status: int(n) for status, n in session.execute(stmt)}


def delivery_counts_many(
    session: Session, campaign_ids: Collection[int], statuses: Collection[str] = ()
) -> dict[int, dict[str, int]]:
    """Counts per delivery status for many campaigns in one grouped query (campaign lists);
    only of `statuses` when given (a range of the (campaign_id, status, id) index each)."""
    found: dict[int, dict[str, int]] = {cid: {} for cid in campaign_ids}
    if not found:
        return found
    stmt = (
        select(Delivery.campaign_id, Delivery.status, func.count())
        .where(Delivery.campaign_id.in_(list(found)))
        .group_by(Delivery.campaign_id, Delivery.status)
    )
    if statuses:
        stmt = stmt.where(Delivery.status.in_(list(statuses)))
    for campaign_id, status, n in session.execute(stmt):
        found[campaign_id][status] = int(n)
    return found


def campaigns_page(session: Session, statuses: Collection[str] = (), *, limit: int,
                   offset: int = 0) -> list[Campaign]:
    """One page of the campaign list, newest first."""
    stmt = select(Campaign).order_by(Campaign.id.desc()).limit(limit).offset(offset)
    if statuses:
        stmt = stmt.where(Campaign.status.in_(list(statuses)))
    return list(session.scalars(stmt))


def count_campaigns(session: Session, statuses: Collection[str] = ()) -> int:
    stmt = select(func.count()).select_from(Campaign)
    if statuses:
        stmt = stmt.where(Campaign.status.in_(list(statuses)))
    return int(session.scalar(stmt) or 0)


def next_scheduled(session: Session, limit: int) -> list[Campaign]:
    """The scheduled campaigns that go out first."""
    return list(session.scalars(
        select(Campaign).where(Campaign.status == "scheduled", Campaign.scheduled_at.is_not(None))
        .order_by(Campaign.scheduled_at, Campaign.id).limit(limit)))


def campaigns_between(session: Session, start: dt.datetime, end: dt.datetime) -> list[Campaign]:
    """Campaigns scheduled, or (sent without a schedule) started, in [start, end), in time
    order; drafts and cancelled ones are not on a calendar."""
    when = func.coalesce(Campaign.scheduled_at, Campaign.started_at)
    stmt = (select(Campaign)
            .where(Campaign.status.not_in(("draft", "cancelled")), when >= start, when < end)
            .order_by(when, Campaign.id))
    return list(session.scalars(stmt))


def campaigns_sending_since(session: Session, since: dt.datetime) -> list[Campaign]:
    """Campaigns that started and were still sending at or after `since` (running, paused,
    cancelled or finished since then): the only ones with deliveries sent since."""
    stmt = select(Campaign).where(
        Campaign.started_at.is_not(None),
        or_(Campaign.finished_at.is_(None), Campaign.finished_at >= since),
        or_(Campaign.status.in_(("running", "paused")), Campaign.updated_at >= since,
            Campaign.finished_at >= since),
    ).order_by(Campaign.id.desc())
    return list(session.scalars(stmt))


def epoch_bucket(session: Session, column: Any, step: int) -> ColumnElement[Any]:
    """The column's time as whole `step`-second buckets since 1970 (both backends; SQLite
    stores UTC text that strftime reads)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(func.extract("epoch", column) / step)
    return func.cast(func.strftime("%s", column), Integer) / step


def sent_series(session: Session, campaign_id: int, step: int) -> list[tuple[int, int]]:
    """(bucket, messages the relay accepted) of one campaign, `step` seconds a bucket; one
    grouped query over its deliveries."""
    return sent_series_since(session, campaign_id, step, None)[0]


def sent_series_since(session: Session, campaign_id: int, step: int,
                      since: dt.datetime | None) -> tuple[list[tuple[int, int]], int]:
    """sent_series, and in the same pass over the campaign's deliveries what `sent_since`
    counts (sent since `since`; 0 without one): a live status reads them once, not twice."""
    bucket = epoch_bucket(session, Delivery.sent_at, step).label("bucket")
    recent = (func.count().filter(Delivery.status == "sent", Delivery.sent_at >= since)
              if since is not None else literal(0))
    stmt = (select(bucket, func.count(), recent)
            .where(Delivery.campaign_id == campaign_id,
                   Delivery.status.in_(("sent", "bounced")), Delivery.sent_at.is_not(None))
            .group_by(bucket).order_by(bucket))
    rows = session.execute(stmt).all()
    return [(int(b), int(n)) for b, n, _r in rows], sum(int(r or 0) for *_x, r in rows)


def sent_in_period(session: Session, campaign_ids: Collection[int], since: dt.datetime) -> int:
    """Messages of these campaigns the relay accepted since `since` (one query)."""
    if not campaign_ids:
        return 0
    stmt = select(func.count()).where(
        Delivery.campaign_id.in_(list(campaign_ids)), Delivery.status.in_(("sent", "bounced")),
        Delivery.sent_at >= since)
    return int(session.scalar(stmt) or 0)


def sent_since(session: Session, campaign_id: int, since: dt.datetime) -> int:
    stmt = select(func.count()).where(
        Delivery.campaign_id == campaign_id, Delivery.status == "sent", Delivery.sent_at >= since
    )
    return int(session.scalar(stmt) or 0)


def claim_batch(
    session: Session,
    worker: str,
    limit: int,
    now: dt.datetime,
    lease_expired: dt.datetime,
) -> list[int]:
    """Mark up to `limit` due deliveries of running campaigns as ours (`sending`); their ids.

    PostgreSQL: FOR UPDATE SKIP LOCKED lets many workers claim side by side without waiting or
    overlapping. SQLite has one writer at a time (BEGIN IMMEDIATE), so plain selects are safe.
    Rows stuck in `sending` past their lease belonged to a dead worker and are claimed again.

    Each pick is one campaign and one status, ordered by id, so it is a range scan of the
    (campaign_id, status, id) index however many deliveries are already sent: a claim costs the
    same at the end of a 100,000-person campaign as at its start.
    """
    if limit <= 0:
        return []
    skip_locked = session.get_bind().dialect.name == "postgresql"
    running = list(session.scalars(
        select(Campaign.id).where(Campaign.status == "running").order_by(Campaign.id)
    ))
    picked: list[int] = []
    due = or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)
    kinds = (
        (Delivery.status == "queued", due),
        (Delivery.status == "deferred", Delivery.next_attempt_at <= now),
        (Delivery.status == "sending", Delivery.claimed_at < lease_expired),
    )
    for campaign_id in running:
        for status_clause, extra in kinds:
            want = limit - len(picked)
            if want <= 0:
                break
            pick = (
                select(Delivery.id)
                .where(Delivery.campaign_id == campaign_id, status_clause, extra,
                       # the brake on mass failure: mail to a paused domain waits
                       not_paused(Delivery.email))
                .order_by(Delivery.id)
                .limit(want)
            )
            if skip_locked:
                pick = pick.with_for_update(skip_locked=True)
            picked.extend(session.scalars(pick))
    if not picked:
        return []
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(picked))
        .values(status="sending", claimed_by=worker, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return sorted(picked)


def recipient_rows(session: Session, delivery_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Everything a batch of claimed deliveries needs to be rendered.

    One query for the deliveries and their campaigns' audiences, then one query per campaign in
    the batch (usually one) for the people, through the subscribers package. `eligible` is false
    for people who left, were suppressed or erased after the snapshot; the engine skips those.
    """
    if not delivery_ids:
        return []
    stmt = (
        select(
            Delivery.id.label("delivery_id"),
            Delivery.campaign_id,
            Delivery.subscriber_id,
            Delivery.attempts,
            Delivery.first_attempt_at,
            Campaign.audience,
        )
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.id.in_(list(delivery_ids)))
        .order_by(Delivery.id)
    )
    rows = [dict(row._mapping) for row in session.execute(stmt)]
    by_campaign: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by_campaign.setdefault(row["campaign_id"], []).append(row)
    blank = {"public_id": "", "email": "", "name": "", "organisation": "", "job_title": "",
             "region": "", "language": "nl", "attributes": {}, "mailable": False}
    for group in by_campaign.values():
        lists = (group[0]["audience"] or {}).get("lists") or ()
        people = mailing_data(
            session, {r["subscriber_id"] for r in group if r["subscriber_id"] is not None}, lists
        )
        for row in group:
            person = people.get(row["subscriber_id"]) if row["subscriber_id"] else None
            row.update({k: v for k, v in (person or blank).items() if k != "id"})
            row["eligible"] = bool(row["mailable"])
    return rows


def _held_by(worker: str | None) -> list[Any]:
    """The fence: a worker records only rows it still holds. Once another worker took a row
    over (its lease ran out, or this worker was seen dead), the late outcome changes nothing."""
    if worker is None:
        return []
    return [Delivery.status == "sending", Delivery.claimed_by == worker]


def mark_sent(
    session: Session, delivery_ids: Sequence[int], now: dt.datetime, *,
    worker: str | None = None,
) -> None:
    """Record accepted messages; a sent delivery is never claimed again."""
    if not delivery_ids:
        return
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(list(delivery_ids)), *_held_by(worker))
        .values(
            status="sent",
            sent_at=now,
            attempts=Delivery.attempts + 1,
            first_attempt_at=func.coalesce(Delivery.first_attempt_at, now),
            last_code=250,
            last_error="",
            claimed_by="",
            claimed_at=None,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )


def _executemany(
    session: Session, rows: Sequence[dict[str, Any]], worker: str | None, **values: Any
) -> None:
    table = Delivery.__table__
    fence = [] if worker is None else [table.c.status == "sending",
                                       table.c.claimed_by == worker]
    stmt = (
        update(table)  # type: ignore[arg-type]
        .where(table.c.id == bindparam("b_id"), *fence)
        .values(**values)
    )
    session.execute(stmt, list(rows))


def mark_deferred(
    session: Session, rows: Sequence[dict[str, Any]], *, worker: str | None = None
) -> None:
    """rows: b_id, b_code, b_error, b_next, b_first (first attempt time)."""
    if rows:
        _executemany(
            session,
            rows,
            worker,
            status="deferred",
            attempts=Delivery.__table__.c.attempts + 1,
            last_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            next_attempt_at=bindparam("b_next"),
            first_attempt_at=bindparam("b_first"),
            claimed_by="",
            claimed_at=None,
        )


def mark_failed(
    session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime, *,
    worker: str | None = None,
) -> None:
    """rows: b_id, b_code, b_error, b_first. Permanent: never retried."""
    if rows:
        _executemany(
            session,
            rows,
            worker,
            status="failed",
            attempts=Delivery.__table__.c.attempts + 1,
            last_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            first_attempt_at=bindparam("b_first"),
            next_attempt_at=None,
            claimed_by="",
            claimed_at=None,
        )


def mark_skipped(session: Session, delivery_ids: Sequence[int], reason: str) -> None:
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.status != "sent")
            .values(status="skipped", last_error=reason, claimed_by="", claimed_at=None)
            .execution_options(synchronize_session=False)
        )


def renew_lease(
    session: Session, worker: str, delivery_ids: Sequence[int], now: dt.datetime
) -> int:
    """Extend our claim on deliveries still in hand, so a slow but living worker keeps them;
    how many were still ours."""
    ids = list(delivery_ids)
    renewed = 0
    for start in range(0, len(ids), 5000):
        result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Delivery)
            .where(Delivery.id.in_(ids[start : start + 5000]), Delivery.status == "sending",
                   Delivery.claimed_by == worker)
            .values(claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        renewed += int(result.rowcount or 0)
    return renewed


def requeue(
    session: Session, delivery_ids: Sequence[int], not_before: dt.datetime, *,
    worker: str | None = None,
) -> None:
    """Give claimed deliveries back untried (connection trouble, pause, shutdown)."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(delivery_ids)), Delivery.status == "sending",
                   *_held_by(worker))
            .values(status="queued", claimed_by="", claimed_at=None, next_attempt_at=not_before)
            .execution_options(synchronize_session=False)
        )


def release_campaign(session: Session, campaign_id: int, status: str, reason: str) -> int:
    """Close the open deliveries of a cancelled campaign as `status` (they will not be sent)."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Delivery)
        .where(Delivery.campaign_id == campaign_id, Delivery.status.in_(("queued", "deferred")))
        .values(status=status, last_error=reason, claimed_by="", claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def finish_done_campaigns(session: Session, now: dt.datetime) -> list[int]:
    """Running campaigns with no open delivery left become `finished`; their ids."""
    open_rows = exists(
        select(Delivery.id).where(
            Delivery.campaign_id == Campaign.id, Delivery.status.in_(OPEN_STATUSES)
        )
    )
    ids = list(
        session.scalars(select(Campaign.id).where(Campaign.status == "running", ~open_rows))
    )
    if ids:
        session.execute(
            update(Campaign)
            .where(Campaign.id.in_(ids), Campaign.status == "running")
            .values(status="finished", finished_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        # Nothing is open now, so these counts stay true but for sent -> bounced (which readers
        # count live), and when each message went out never changes: grouped once at the end
        # instead of on every page view.
        started = dict(session.execute(
            select(Campaign.id, Campaign.started_at).where(Campaign.id.in_(ids))).all())
        for campaign_id, counts in delivery_counts_many(session, ids).items():
            step = series_step(started.get(campaign_id), now, now)
            kept = {"counts": counts, "series": {
                "step": step, "sent": sent_series(session, campaign_id, step)}}
            session.execute(
                update(Campaign).where(Campaign.id == campaign_id)
                .values(final_counts=kept)
                .execution_options(synchronize_session=False)
            )
    return ids


def series_step(started_at: dt.datetime | None, finished_at: dt.datetime | None,
                now: dt.datetime) -> int:
    """Seconds per bar of a campaign's chart: minutes for a send of up to three hours, hours
    up to three days, days beyond."""
    if started_at is None:
        return 60
    seconds = ((finished_at or now) - started_at).total_seconds()
    if seconds <= 3 * 3600:
        return 60
    return 3600 if seconds <= 3 * 86400 else 86400


def work_left(
    session: Session, now: dt.datetime, campaign_ids: Collection[int] | None = None
) -> tuple[int, int]:
    """(due now or in flight, deferred to later) deliveries of running campaigns."""
    running = select(Campaign.id).where(Campaign.status == "running")
    base = [Delivery.campaign_id.in_(running)]
    if campaign_ids is not None:
        base.append(Delivery.campaign_id.in_(list(campaign_ids)))
    later = and_(Delivery.status == "deferred", Delivery.next_attempt_at > now)
    # Mail to a paused receiving domain is not due: it waits for an admin (the brake).
    due = select(func.count()).where(*base, Delivery.status.in_(OPEN_STATUSES), ~later,
                                     not_paused(Delivery.email))
    deferred = select(func.count()).where(*base, later)
    return int(session.scalar(due) or 0), int(session.scalar(deferred) or 0)


def in_window(
    session: Session, since: dt.datetime, lease_expired: dt.datetime | None = None
) -> tuple[int, dt.datetime | None]:
    """Messages handed to the relay since `since` or in flight now (all campaigns, all
    workers), and the oldest send time in the window; what the relay limits count.

    One statement, so one snapshot: counted as two, a row that a recorder moved from `sending`
    to `sent` between them was in neither count, and workers claimed past the limit. Rows
    `sending` past their lease belong to no living worker and hold no budget.
    """
    is_sent = and_(Delivery.status == "sent", Delivery.sent_at >= since)
    flying = Delivery.status == "sending"
    if lease_expired is not None:
        flying = and_(flying, Delivery.claimed_at >= lease_expired)
    stmt = select(func.count(), func.min(case((is_sent, Delivery.sent_at)))).where(
        or_(is_sent, flying)
    )
    count, oldest = session.execute(stmt).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return int(count or 0), oldest


def lock_rate_window(session: Session) -> None:
    """Serialise rate-limited claims across workers for this transaction.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: BEGIN IMMEDIATE already serialises.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(784512)"))


def bound_statement_time(session: Session, seconds: float) -> None:
    """PostgreSQL: no statement of this transaction waits longer than `seconds` (a table locked
    by someone else, a stalled server), so the worker stays responsive and can stop."""
    if session.get_bind().dialect.name == "postgresql":
        # And a transaction left open by a stalled worker (SIGSTOP, a frozen VM) is ended by
        # the server, so the rows it locked do not stay locked for the others.
        session.execute(
            text("SELECT set_config('statement_timeout', :ms, true), "
                 "set_config('idle_in_transaction_session_timeout', :ms, true)"),
            {"ms": str(int(seconds * 1000))},
        )


def register_worker(
    session: Session, name: str, host: str, pid: int, now: dt.datetime
) -> int:
    """A row for a starting worker; its id (the key of its PostgreSQL advisory lock)."""
    worker = DeliveryWorker(name=name, host=host, pid=pid, started_at=now, heartbeat_at=now)
    session.add(worker)
    session.flush()
    return worker.id


def beat_worker(session: Session, worker_id: int, now: dt.datetime) -> bool:
    """The worker is alive; False if its row is gone (another worker found it dead)."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(DeliveryWorker).where(DeliveryWorker.id == worker_id)
        .values(heartbeat_at=now).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def drop_worker(session: Session, worker_id: int) -> None:
    session.execute(delete(DeliveryWorker).where(DeliveryWorker.id == worker_id))


def workers(session: Session) -> list[tuple[int, str, str, int, dt.datetime]]:
    """(id, name, host, pid, heartbeat_at) of every registered worker."""
    stmt = select(DeliveryWorker.id, DeliveryWorker.name, DeliveryWorker.host,
                  DeliveryWorker.pid, DeliveryWorker.heartbeat_at)
    return [(i, n, h, p, b) for i, n, h, p, b in session.execute(stmt)]


def held_worker_locks(session: Session) -> set[int] | None:
    """PostgreSQL: ids of the workers whose session advisory lock is held now (a worker's lock
    dies with its connection, so a killed worker drops out at once). None elsewhere."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    rows = session.execute(text(
        "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = :cls AND objsubid = 2"
    ), {"cls": WORKER_LOCK_CLASS})
    return {int(r[0]) for r in rows}


def release_workers(session: Session, ids: Collection[int], names: Collection[str]) -> int:
    """Dead workers: hand their `sending` rows back to the queue, forget them; how many rows."""
    released = 0
    if names:
        result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            update(Delivery)
            .where(Delivery.status == "sending", Delivery.claimed_by.in_(list(names)))
            .values(status="queued", claimed_by="", claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        released = int(result.rowcount or 0)
    if ids:
        session.execute(delete(DeliveryWorker).where(DeliveryWorker.id.in_(list(ids))))
    return released


def campaign_statuses(session: Session, campaign_ids: Collection[int]) -> dict[int, str]:
    if not campaign_ids:
        return {}
    stmt = select(Campaign.id, Campaign.status).where(Campaign.id.in_(list(campaign_ids)))
    return {cid: status for cid, status in session.execute(stmt)}


def pause_for_outage(
    session: Session, campaign_ids: Collection[int], reason: str, now: dt.datetime,
    first_wait: float, longest_wait: float,
) -> dict[int, dt.datetime]:
    """Pause running campaigns because the relay is unreachable, to be resumed by themselves
    after a wait that doubles with each outage pause in a row; {campaign: resume time}."""
    resumes: dict[int, dt.datetime] = {}
    stmt = select(Campaign.id, Campaign.relay_outages, Campaign.outage_since).where(
        Campaign.id.in_(list(campaign_ids)), Campaign.status == "running"
    )
    for campaign_id, outages, since in session.execute(stmt).all():
        wait = min(first_wait * 2 ** (outages or 0), longest_wait)
        at = now + dt.timedelta(seconds=wait)
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id, Campaign.status == "running")
            .values(status="paused", pause_reason=reason, resume_at=at,
                    outage_since=since or now, relay_outages=(outages or 0) + 1,
                    updated_at=now)
            .execution_options(synchronize_session=False)
        )
        resumes[campaign_id] = at
    return resumes


def resume_after_outage(session: Session, now: dt.datetime) -> list[int]:
    """Campaigns paused for a relay outage whose wait is over go back to `running`; their ids.
    (A pause by an administrator has no resume_at and stays.)"""
    ids = list(session.scalars(select(Campaign.id).where(
        Campaign.status == "paused", Campaign.resume_at.is_not(None), Campaign.resume_at <= now
    )))
    if ids:
        session.execute(
            update(Campaign)
            .where(Campaign.id.in_(ids), Campaign.status == "paused")
            .values(status="running", resume_at=None, pause_reason="", updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


def clear_outage(session: Session, campaign_ids: Collection[int]) -> list[tuple[int, dt.datetime]]:
    """The relay took mail again for these campaigns: forget their outage; (id, since) of those
    that had one."""
    stmt = select(Campaign.id, Campaign.outage_since).where(
        Campaign.id.in_(list(campaign_ids)), Campaign.outage_since.is_not(None)
    )
    had = [(cid, since) for cid, since in session.execute(stmt) if since is not None]
    if had:
        session.execute(
            update(Campaign).where(Campaign.id.in_([cid for cid, _ in had]))
            .values(outage_since=None, relay_outages=0)
            .execution_options(synchronize_session=False)
        )
    return had


def deliveries_of_subscriber(
    session: Session, subscriber_id: int
) -> list[tuple[Delivery, str]]:
    """Every delivery to one person with its campaign's subject (for an access request)."""
    stmt = (
        select(Delivery, Campaign.subject)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.id)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def forget_recipient(session: Session, subscriber_id: int, email_key: str = "") -> None:
    """Erasure: mail not yet sent to the person is skipped (without an address it could not
    go), and every delivery row loses the address. The rows stay for the campaigns' figures;
    subscriber_id is nulled by the foreign key (ON DELETE SET NULL) when the person goes."""
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber_id,
               Delivery.status.in_(("queued", "deferred")))
        .values(status="skipped", last_error="recipient erased")
        .execution_options(synchronize_session=False)
    )
    # The relay's error texts often quote the address ("550 <anna@...>: no such user").
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status != "skipped")
        .values(email="", last_error="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber_id)
        .values(email="")
        .execution_options(synchronize_session=False)
    )
    if email_key:  # error texts of other rows that quote the address (a forwarding mailbox)
        session.execute(
            update(Delivery)
            .where(func.lower(Delivery.last_error).contains(email_key, autoescape=True))
            .values(last_error="")
            .execution_options(synchronize_session=False)
        )


def _domain_match(email_column: Any) -> ColumnElement[bool]:
    """email_column's domain is a paused domain (both stored lower case)."""
    return func.lower(email_column).like(literal("%@").concat(DomainPause.domain))


def active_pauses(session: Session) -> dict[str, DomainPause]:
    rows = session.scalars(select(DomainPause).where(DomainPause.resumed_at.is_(None))
                           .order_by(DomainPause.id))
    return {p.domain: p for p in rows}


def add_pauses(session: Session, pauses: Collection[DomainPause]) -> None:
    session.add_all(pauses)
    session.flush()


def resume_pause(session: Session, domain: str, actor: str, now: dt.datetime) -> int:
    """End the active pause of `domain`; how many were ended (0 or 1)."""
    result = session.execute(
        update(DomainPause)
        .where(DomainPause.domain == domain, DomainPause.resumed_at.is_(None))
        .values(resumed_at=now, resumed_by=actor)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def not_paused(email_column: Any) -> ColumnElement[bool]:
    """A WHERE clause for the delivery claim: the address is not at a paused domain."""
    return ~exists(select(DomainPause.id).where(DomainPause.resumed_at.is_(None),
                                                _domain_match(email_column)))


def waiting_by_paused_domain(session: Session, campaign_id: int | None = None
                             ) -> list[dict[str, Any]]:
    """Each active pause, with how many unsent deliveries (of the campaign) wait for it."""
    conditions = [Delivery.status.in_(("queued", "deferred", "sending")),
                  _domain_match(Delivery.email)]
    if campaign_id is not None:
        conditions.append(Delivery.campaign_id == campaign_id)
    waiting = (select(func.count(Delivery.id)).where(*conditions).correlate(DomainPause)
               .scalar_subquery())
    rows = session.execute(
        select(DomainPause, waiting).where(DomainPause.resumed_at.is_(None))
        .order_by(DomainPause.id)
    )
    return [{"domain": p.domain, "reason": p.reason, "detail": p.detail,
             "paused_at": p.paused_at, "waiting": int(n or 0)} for p, n in rows]
