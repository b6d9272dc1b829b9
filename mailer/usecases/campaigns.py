"""Campaigns as use cases: the reads the console shows, and the changes, each audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from mailer.audit import Actor
from mailer.campaigns import queries
from mailer.campaigns import service as campaigns
from mailer.usecases.users import require
from subscribers.models import utcnow

__all__ = ["overview", "detail"]


def _row(c: Any, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": c.id, "kind": c.kind, "subject": c.subject, "status": c.status,
            "scheduled_at": c.scheduled_at, "started_at": c.started_at,
            "finished_at": c.finished_at, "sent": counts.get("sent", 0),
            "recipients": sum(counts.values())}


def overview(session: Session, actor: Actor, *, statuses: tuple[str, ...] = ()
             ) -> list[dict[str, Any]]:
    """Every campaign, newest first, with its delivery figures (two queries in all)."""
    require(actor, "campaigns.read")
    rows = queries.campaigns_list(session, statuses)
    counts = queries.delivery_counts_many(session, [c.id for c in rows])
    return [_row(c, counts.get(c.id, {})) for c in rows]


def detail(session: Session, actor: Actor, campaign_id: int,
           now: dt.datetime | None = None) -> dict[str, Any]:
    """One campaign's status as `mailer campaigns status` shows it."""
    require(actor, "campaigns.read")
    return campaigns.campaign_status(session, campaign_id, now=now or utcnow())
