"""Every SQL statement of the web pages, as named functions.

Reads of subscriber data that `subscribers.service` has no function for (a person by the id a
signed link carries, the lists a page offers) and the rate-limit counters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.orm import Session

from mailer.campaigns.models import Campaign
from mailer.web.models import RateEvent
from subscribers.models import MailingList, Subscriber, Subscription

__all__ = [
    "subscriber_by_id",
    "campaign_by_id",
    "all_lists",
    "lists_by_ids",
    "lists_by_slugs",
    "subscription_statuses",
    "delete_unconfirmed_signups",
    "count_rate_events",
    "add_rate_event",
    "prune_rate_events",
]


def subscriber_by_id(session: Session, subscriber_id: int) -> Subscriber | None:
    return session.get(Subscriber, subscriber_id)


def campaign_by_id(session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def all_lists(session: Session) -> list[MailingList]:
    return list(session.scalars(select(MailingList).order_by(MailingList.title)))


def lists_by_ids(session: Session, ids: Collection[int]) -> list[MailingList]:
    if not ids:
        return []
    stmt = select(MailingList).where(MailingList.id.in_(list(ids))).order_by(MailingList.title)
    return list(session.scalars(stmt))


def lists_by_slugs(session: Session, slugs: Collection[str]) -> dict[str, MailingList]:
    if not slugs:
        return {}
    stmt = select(MailingList).where(MailingList.slug.in_(list(slugs)))
    return {ml.slug: ml for ml in session.scalars(stmt)}


def subscription_statuses(session: Session, subscriber_id: int) -> dict[int, str]:
    """{list id: subscription status} of one person."""
    stmt = select(Subscription.list_id, Subscription.status).where(
        Subscription.subscriber_id == subscriber_id
    )
    return {list_id: status for list_id, status in session.execute(stmt)}


def delete_unconfirmed_signups(session: Session, created_before: dt.datetime) -> int:
    """Delete people the web form created before `created_before` who never confirmed a list.

    One statement for all of them; subscriptions and consent history go with them (cascade).
    """
    confirmed_anything = exists(
        select(Subscription.subscriber_id).where(
            Subscription.subscriber_id == Subscriber.id,
            or_(Subscription.status != "pending", Subscription.confirmed_at.is_not(None)),
        )
    )
    stmt = delete(Subscriber).where(
        Subscriber.consent_source == "web",
        Subscriber.status == "active",
        Subscriber.created_at < created_before,
        ~confirmed_anything,
    )
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def count_rate_events(session: Session, bucket: str, key: str, since: dt.datetime) -> int:
    stmt = select(func.count(RateEvent.id)).where(
        RateEvent.bucket == bucket, RateEvent.key == key, RateEvent.at > since
    )
    return int(session.scalar(stmt) or 0)


def add_rate_event(session: Session, bucket: str, key: str, at: dt.datetime) -> None:
    session.add(RateEvent(bucket=bucket, key=key, at=at))


def prune_rate_events(session: Session, before: dt.datetime) -> int:
    result = session.execute(delete(RateEvent).where(RateEvent.at <= before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
