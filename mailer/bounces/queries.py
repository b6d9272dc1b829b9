"""Every SQL statement of the bounces package, as named functions; each takes the whole batch.

People are read through `subscribers.queries`, never here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import case, delete, distinct, extract, func, literal, or_, select, update
from sqlalchemy.orm import Session

from mailer.bounces.models import Bounce, BounceMessage, BounceScore
from mailer.campaigns.models import Campaign, Delivery
from mailer.campaigns.queries import epoch_bucket
from mailer.kernel.mentions import Needles, mentions

__all__ = [
    "message_by_fingerprint",
    "deliveries_by_ids",
    "scores_by_subscriber",
    "existing_dedupe_keys",
    "mailed_since",
    "mark_deliveries_bounced",
    "list_bounces",
    "bounce_with_message",
    "campaign_counts",
    "bounces_of_subscriber",
    "purge_raw",
    "purge_junk_raw",
    "trim_raw_total",
    "delete_score",
    "delete_scores",
    "forget_subscriber",
    "refusals_since",
    "attempts_at",
    "counts_by_reason",
    "recipients_by_reason",
    "counts_by_day",
    "held_bounces",
    "bounce_by_id",
    "bounced_by_reason",
    "messages_mentioning",
    "kind_counts_since",
    "kind_counts_of",
    "received_series",
]


def message_by_fingerprint(session: Session, fingerprint: str) -> BounceMessage | None:
    return session.scalars(
        select(BounceMessage).where(BounceMessage.fingerprint == fingerprint)
    ).first()


def deliveries_by_ids(session: Session, ids: Collection[int]) -> dict[int, Delivery]:
    if not ids:
        return {}
    rows = session.scalars(select(Delivery).where(Delivery.id.in_(list(ids))))
    return {d.id: d for d in rows}


def scores_by_subscriber(session: Session, ids: Collection[int]) -> dict[int, BounceScore]:
    if not ids:
        return {}
    rows = session.scalars(select(BounceScore).where(BounceScore.subscriber_id.in_(list(ids))))
    return {s.subscriber_id: s for s in rows}


def existing_dedupe_keys(session: Session, keys: Collection[str]) -> set[str]:
    if not keys:
        return set()
    return set(session.scalars(select(Bounce.dedupe_key).where(Bounce.dedupe_key.in_(list(keys)))))


def mailed_since(session: Session, subscriber_ids: Collection[int], since: dt.datetime
                 ) -> set[int]:
    """Which of these subscribers had a message accepted by the relay since `since`."""
    if not subscriber_ids:
        return set()
    return set(session.scalars(
        select(Delivery.subscriber_id).distinct().where(
            Delivery.subscriber_id.in_(list(subscriber_ids)), Delivery.sent_at >= since)
    ))


def mark_deliveries_bounced(session: Session, ids: Collection[int]) -> None:
    """Deliveries a bounce came back for; only ones that went out (a queued one never bounced)."""
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(list(ids)), Delivery.status.in_(("sent", "bounced")))
            .values(status="bounced")
        )


def list_bounces(
    session: Session,
    *,
    campaign_id: int | None = None,
    kind: str | None = None,
    subscriber_id: int | None = None,
    reason: str | None = None,
    limit: int = 200,
) -> list[Bounce]:
    query = select(Bounce).order_by(Bounce.id.desc()).limit(limit)
    if reason is not None:
        query = query.where(Bounce.reason == reason)
    if campaign_id is not None:
        query = query.where(Bounce.campaign_id == campaign_id)
    if kind is not None:
        query = query.where(Bounce.kind == kind)
    if subscriber_id is not None:
        query = query.where(Bounce.subscriber_id == subscriber_id)
    return list(session.scalars(query))


def bounce_with_message(session: Session, bounce_id: int) -> tuple[Bounce, BounceMessage | None]:
    row = session.execute(
        select(Bounce, BounceMessage)
        .outerjoin(BounceMessage, BounceMessage.id == Bounce.message_id)
        .where(Bounce.id == bounce_id)
    ).first()
    if row is None:
        raise LookupError(bounce_id)
    return row[0], row[1]


def campaign_counts(session: Session, campaign_id: int | None = None, *,
                    sent_known: int | None = None) -> list[dict[str, Any]]:
    """Per campaign: subject, deliveries that went out, and distinct deliveries per bounce kind.
    `sent_known`: one campaign's deliveries that went out, already counted by the caller."""
    went_out = ("sent", "bounced", "failed")
    # One campaign: its filter inside the grouped subqueries too. (PostgreSQL does not carry
    # it through the outer join, and counted every campaign's deliveries to show one.)
    one_d = [Delivery.campaign_id == campaign_id] if campaign_id is not None else []
    one_b = [Bounce.campaign_id == campaign_id] if campaign_id is not None else []
    sent = (
        select(Delivery.campaign_id, func.count().label("sent"))
        .where(Delivery.status.in_(went_out), *one_d)
        .group_by(Delivery.campaign_id)
        .subquery()
    )

    def per_kind(kind: str) -> Any:
        return func.count(distinct(Bounce.delivery_id)).filter(Bounce.kind == kind)

    kinds = (
        select(
            Bounce.campaign_id,
            per_kind("hard").label("hard"),
            per_kind("soft").label("soft"),
            per_kind("complaint").label("complaints"),
            per_kind("refused").label("refused"),
        )
        .where(Bounce.campaign_id.is_not(None), *one_b)
        .group_by(Bounce.campaign_id)
        .subquery()
    )
    query = (
        select(
            Campaign.id,
            Campaign.subject,
            literal(sent_known) if sent_known is not None and campaign_id is not None
            else func.coalesce(sent.c.sent, 0),
            func.coalesce(kinds.c.hard, 0),
            func.coalesce(kinds.c.soft, 0),
            func.coalesce(kinds.c.complaints, 0),
            func.coalesce(kinds.c.refused, 0),
        )
        .outerjoin(kinds, kinds.c.campaign_id == Campaign.id)
        .order_by(Campaign.id)
    )
    if sent_known is None or campaign_id is None:
        query = query.outerjoin(sent, sent.c.campaign_id == Campaign.id)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    return [
        {"campaign_id": cid, "subject": subject, "sent": int(s), "hard": int(h),
         "soft": int(so), "complaints": int(c), "refused": int(r)}
        for cid, subject, s, h, so, c, r in session.execute(query)
    ]


def bounces_of_subscriber(session: Session, subscriber_id: int, limit: int = 50) -> list[Bounce]:
    return list_bounces(session, subscriber_id=subscriber_id, limit=limit)


def purge_raw(session: Session, before: dt.datetime, now: dt.datetime) -> int:
    """Drop the raw text of messages received before `before`; the parsed records stay."""
    result = session.execute(
        update(BounceMessage)
        .where(BounceMessage.received_at < before, BounceMessage.raw.is_not(None))
        .values(raw=None, purged_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _matched() -> Any:
    """Messages with at least one record that named one of our deliveries or people."""
    return select(Bounce.message_id).where(
        Bounce.message_id.is_not(None),
        (Bounce.delivery_id.is_not(None)) | (Bounce.subscriber_id.is_not(None)),
    )


def purge_junk_raw(session: Session, before: dt.datetime, now: dt.datetime) -> int:
    """Drop the raw text of messages before `before` that matched none of our deliveries."""
    result = session.execute(
        update(BounceMessage)
        .where(BounceMessage.received_at < before, BounceMessage.raw.is_not(None),
               BounceMessage.id.not_in(_matched()))
        .values(raw=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def trim_raw_total(session: Session, total_bytes: int, now: dt.datetime) -> int:
    """Keep at most `total_bytes` of raw text in all: the oldest unmatched mail goes first,
    then the oldest matched. Returns how many messages lost their raw text."""
    size = func.length(BounceMessage.raw)
    stored = session.scalar(select(func.coalesce(func.sum(size), 0))
                            .where(BounceMessage.raw.is_not(None)))
    excess = int(stored or 0) - total_bytes
    if excess <= 0:
        return 0
    matched = BounceMessage.id.in_(_matched())
    rows = session.execute(
        select(BounceMessage.id, size)
        .where(BounceMessage.raw.is_not(None))
        .order_by(matched, BounceMessage.received_at, BounceMessage.id)
    )
    victims: list[int] = []
    for message_id, length in rows:
        victims.append(message_id)
        excess -= int(length or 0)
        if excess <= 0:
            break
    session.execute(
        update(BounceMessage).where(BounceMessage.id.in_(victims))
        .values(raw=None, purged_at=now).execution_options(synchronize_session=False)
    )
    return len(victims)


def delete_score(session: Session, subscriber_id: int) -> int:
    result = session.execute(delete(BounceScore).where(BounceScore.subscriber_id == subscriber_id))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_scores(session: Session, subscriber_ids: Collection[int]) -> None:
    if subscriber_ids:
        session.execute(delete(BounceScore).where(
            BounceScore.subscriber_id.in_(list(subscriber_ids))))
def messages_mentioning(session: Session, needles: Needles) -> list[BounceMessage]:
    """Every kept message whose headers or raw text mention the person (address, name, phone;
    any case; inside base64 or quoted-printable parts too): replies, unmatched reports and
    forwarded complaints name people wherever they like.

    Read in chunks and searched here, not in SQL: the same on both backends, MIME-decoded
    (mailer.kernel.mentions), and the raw text kept is capped (bounces.raw_total_mib)."""
    stmt = (select(BounceMessage.id, BounceMessage.raw, BounceMessage.from_header,
                   BounceMessage.subject, BounceMessage.envelope_from, BounceMessage.envelope_to)
            .execution_options(yield_per=200))
    ids = [
        row.id for row in session.execute(stmt)
        if mentions(None if row.raw is None else bytes(row.raw), needles,
                    (row.from_header, row.subject, row.envelope_from, row.envelope_to))
    ]
    if not ids:
        return []
    return list(session.scalars(select(BounceMessage).where(BounceMessage.id.in_(ids))
                                .order_by(BounceMessage.id)))


def forget_subscriber(session: Session, subscriber_id: int, email_key: str,
                      needles: Needles | None = None) -> None:
    """Erasure: the raw messages and addresses of a person's bounces go; the counts stay.

    Matched by subscriber, by the reported address for reports that matched no one, and by any
    kept message that mentions the person (`needles`, else the address; its records lose their
    texts too)."""
    mentioning = [m.id for m in messages_mentioning(session, needles or Needles.of(email_key))]
    theirs = ((Bounce.subscriber_id == subscriber_id)
              | (func.lower(Bounce.recipient) == email_key)
              | Bounce.message_id.in_(mentioning))
    message_ids = select(Bounce.message_id).where(theirs, Bounce.message_id.is_not(None))
    session.execute(
        update(BounceMessage)
        .where(BounceMessage.id.in_(message_ids) | BounceMessage.id.in_(mentioning))
        .values(raw=None, from_header="", subject="", envelope_to="", envelope_from="")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Bounce)
        .where(theirs)
        .values(recipient="", diagnostic="", outcome="", subscriber_id=None)
        .execution_options(synchronize_session=False)
    )
    delete_score(session, subscriber_id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")




def refusals_since(session: Session, since: dt.datetime) -> list[tuple[str, str]]:
    """(recipient, reason) of verified message- or sender-level refusals since `since`: the
    brake's input. Reports without a valid token (anyone can send those) are left out."""
    rows = session.execute(
        select(Bounce.recipient, Bounce.reason).distinct().where(
            Bounce.kind == "refused", Bounce.received_at >= since, Bounce.held.is_(False),
            or_(Bounce.token_valid.is_(True), Bounce.source == "send-time"))
    )
    return [(r, reason) for r, reason in rows]


def attempts_at(session: Session, domain: str, since: dt.datetime) -> int:
    """Deliveries to `domain` that went out, or were tried, since `since` (for the brake; asked
    only for the few domains that already passed its recipient count)."""
    return int(session.scalar(
        select(func.count(Delivery.id)).where(
            or_(Delivery.sent_at >= since, Delivery.claimed_at >= since),
            func.lower(Delivery.email).like(f"%@{_escape_like(domain)}", escape="\\"))
    ) or 0)












def counts_by_reason(session: Session, campaign_id: int | None = None,
                     since: dt.datetime | None = None) -> list[tuple[str, str, int]]:
    """(reason, kind, records) for `bounces stats --by reason`."""
    query = select(Bounce.reason, Bounce.kind, func.count()).group_by(Bounce.reason, Bounce.kind)
    if campaign_id is not None:
        query = query.where(Bounce.campaign_id == campaign_id)
    if since is not None:
        query = query.where(Bounce.received_at >= since)
    return [(r, k, int(n)) for r, k, n in session.execute(query)]


def recipients_by_reason(session: Session, campaign_id: int | None = None,
                         since: dt.datetime | None = None) -> list[tuple[str, str, str]]:
    """(recipient, reason, kind) of every record, for `--by domain` (grouped by the caller)."""
    query = select(Bounce.recipient, Bounce.reason, Bounce.kind)
    if campaign_id is not None:
        query = query.where(Bounce.campaign_id == campaign_id)
    if since is not None:
        query = query.where(Bounce.received_at >= since)
    return [(r, reason, k) for r, reason, k in session.execute(query)]


def _recipient_domain(session: Session) -> Any:
    """The lower-cased domain of Bounce.recipient in SQL ("" without an @): SQLite and
    PostgreSQL name the string functions differently."""
    recipient = func.lower(Bounce.recipient)
    if session.get_bind().dialect.name == "postgresql":
        domain = func.split_part(recipient, "@", 2)
    else:
        domain = func.substr(recipient, func.instr(recipient, "@") + 1)
    return case((recipient.like("%@%"), domain), else_=literal(""))


def counts_by_day(session: Session, since: dt.datetime
                  ) -> list[tuple[dt.date, str, str, int]]:
    """(day (UTC), reason, receiving domain, records) since `since`, in one grouped
    statement: the console's figures by reason and by domain over time."""
    # Grouped over a subquery: PostgreSQL would see the domain expression's bound
    # parameters in SELECT and GROUP BY as two different expressions.
    rows = select(
        extract("year", Bounce.received_at).label("y"),
        extract("month", Bounce.received_at).label("m"),
        extract("day", Bounce.received_at).label("d"),
        Bounce.reason.label("reason"), _recipient_domain(session).label("domain"),
    ).where(Bounce.received_at >= since).subquery()
    keys = (rows.c.y, rows.c.m, rows.c.d, rows.c.reason, rows.c.domain)
    query = select(*keys, func.count()).group_by(*keys)
    return [(dt.date(int(y), int(m), int(d)), reason, name or "", int(n))
            for y, m, d, reason, name, n in session.execute(query)]


def held_bounces(session: Session, limit: int = 200) -> list[Bounce]:
    return list(session.scalars(select(Bounce).where(Bounce.held.is_(True))
                                .order_by(Bounce.id.desc()).limit(limit)))


def bounce_by_id(session: Session, bounce_id: int) -> Bounce | None:
    return session.get(Bounce, bounce_id)


def bounced_by_reason(
    session: Session, *, reasons: Collection[str] | None, since: dt.datetime | None,
    domain: str | None,
) -> list[tuple[int, str]]:
    """(subscriber id, recipient) of bounce records that acted on someone, filtered; for
    `subscribers reactivate --reason/--since/--domain` (the caller checks who is bounced now)."""
    query = select(Bounce.subscriber_id, Bounce.recipient).distinct().where(
        Bounce.subscriber_id.is_not(None), Bounce.kind.in_(("hard", "soft", "refused",
                                                             "unknown")))
    if reasons:
        query = query.where(Bounce.reason.in_(list(reasons)))
    if since is not None:
        query = query.where(Bounce.received_at >= since)
    if domain:
        query = query.where(func.lower(Bounce.recipient).like(
            f"%@{_escape_like(domain.lower())}", escape="\\"))
    return [(int(s), r) for s, r in session.execute(query) if s is not None]


def kind_counts_since(session: Session, since: dt.datetime) -> dict[str, int]:
    """{kind: reports received since `since`} of the counted kinds (hard, soft, complaint);
    reports held for review (no valid token of ours) are not counted. One grouped query."""
    stmt = (select(Bounce.kind, func.count())
            .where(Bounce.kind.in_(("hard", "soft", "complaint")), Bounce.received_at >= since,
                   Bounce.held.is_(False))
            .group_by(Bounce.kind))
    return {kind: int(n) for kind, n in session.execute(stmt)}


def kind_counts_of(session: Session, campaign_ids: Collection[int]
                   ) -> dict[int, dict[str, int]]:
    """{campaign: {kind: distinct deliveries}} for these campaigns, one grouped query."""
    found: dict[int, dict[str, int]] = {cid: {} for cid in campaign_ids}
    if not found:
        return found
    stmt = (select(Bounce.campaign_id, Bounce.kind, func.count(distinct(Bounce.delivery_id)))
            .where(Bounce.campaign_id.in_(list(found)))
            .group_by(Bounce.campaign_id, Bounce.kind))
    for campaign_id, kind, n in session.execute(stmt):
        if campaign_id is not None:
            found[campaign_id][kind] = int(n)
    return found


def received_series(session: Session, campaign_id: int, step: int
                    ) -> list[tuple[int, str, int]]:
    """(bucket, kind, reports) of one campaign's bounces, `step` seconds a bucket."""
    bucket = epoch_bucket(session, Bounce.received_at, step).label("bucket")
    stmt = (select(bucket, Bounce.kind, func.count())
            .where(Bounce.campaign_id == campaign_id,
                   Bounce.kind.in_(("hard", "soft", "complaint", "refused")))
            .group_by(bucket, Bounce.kind).order_by(bucket))
    return [(int(b), kind, int(n)) for b, kind, n in session.execute(stmt)]
