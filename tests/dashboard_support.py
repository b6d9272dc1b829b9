"""Campaigns, deliveries and bounces for the dashboard tests, written as the engine and the
bounce handler leave them (the states, the times), without a relay."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from mailer.app import App
from mailer.bounces.models import Bounce
from mailer.campaigns import service as campaign_service
from mailer.campaigns.models import Campaign, Delivery
from mailer.database.connect import session_scope

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def campaign(app: App, subject: str, *, started: dt.datetime | None = None,
              **values: object) -> int:
    """A campaign on the nieuwsbrief list; started (its audience snapshotted) when asked."""
    with session_scope(app.sessions) as session:
        c = Campaign(subject=subject, audience={"lists": ["nieuwsbrief"]}, status="draft",
                     pause_reason="", created_by="redactie@gt.example.nl")
        session.add(c)
        session.flush()
        if started is not None:
            campaign_service.start(session, c.id, now=started)
        if values:
            session.execute(update(Campaign).where(Campaign.id == c.id).values(**values))
        return c.id


def send(app: App, campaign_id: int, count: int, at: dt.datetime, status: str = "sent"
          ) -> list[int]:
    """Mark `count` queued deliveries of the campaign as accepted by the relay at `at`."""
    with session_scope(app.sessions) as session:
        ids = list(session.scalars(select(Delivery.id).where(
            Delivery.campaign_id == campaign_id, Delivery.status == "queued")
            .order_by(Delivery.id).limit(count)))
        session.execute(update(Delivery).where(Delivery.id.in_(ids))
                        .values(status=status, sent_at=at, attempts=1))
    return ids


def bounce(app: App, delivery_id: int, kind: str, at: dt.datetime, key: str) -> None:
    with session_scope(app.sessions) as session:
        d = session.get(Delivery, delivery_id)
        assert d is not None
        session.add(Bounce(received_at=at, source="smtp", kind=kind, reason="user-unknown",
                           recipient=d.email, delivery_id=d.id, campaign_id=d.campaign_id,
                           subscriber_id=d.subscriber_id, matched_by="verp", dedupe_key=key))
        if kind in ("hard", "soft"):
            d.status = "bounced"


