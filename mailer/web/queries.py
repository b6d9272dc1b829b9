"""Every SQL statement of the web pages, as named functions.

The campaign a link names and the rate-limit counters. People, lists and subscriptions are
read through `subscribers.queries`, never here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailer.campaigns.models import Campaign
from mailer.web.models import RateEvent

__all__ = [
    "campaign_by_id",
    "count_rate_events",
    "add_rate_event",
    "prune_rate_events",
]


def campaign_by_id(session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


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
