"""Helpers for the bounce tests: a sent delivery to bounce, and the sample messages."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import Session

from mailer.campaigns.models import Campaign, Delivery
from mailer.kernel.tokens import Signer
from subscribers import service as subscribers
from subscribers.models import Subscriber, utcnow

DATA = Path(__file__).parent / "data" / "bounces"
ANNA = "anna.devries@gemeente-a.nl"
_VERP_IN_TEXT = re.compile(rb"bounces\+[0-9a-z]{1,13}-[a-z2-7]{16}@[a-z0-9.-]+", re.IGNORECASE)


def sent_delivery(session: Session, email: str = ANNA, *, campaign: Campaign | None = None
                  ) -> Delivery:
    """A subscriber on list `nieuwsbrief` with one sent delivery of a campaign."""
    if subscribers.queries.list_by_slug(session, "nieuwsbrief") is None:
        subscribers.create_list(session, "nieuwsbrief", "GT Nieuwsbrief")
    found = subscribers.queries.subscriber_by_key(session, subscribers.email_key(email))
    sub: Subscriber = found or subscribers.add_subscriber(
        session, subscribers.SubscriberData(email=email, name="Anna de Vries"),
        lists=["nieuwsbrief"])
    if campaign is None:
        campaign = Campaign(subject="GT Nieuwsbrief november", status="running")
        session.add(campaign)
        session.flush()
    delivery = Delivery(campaign_id=campaign.id, subscriber_id=sub.id, email=sub.email,
                        status="sent", sent_at=utcnow())
    session.add(delivery)
    session.flush()
    return delivery


def sample(name: str, verp: str = "") -> bytes:
    """A message from tests/data/bounces with its VERP address (placeholder or a captured
    one) replaced by `verp`."""
    raw = (DATA / name).read_bytes()
    if verp:
        raw = raw.replace(b"VERP_ADDRESS", verp.encode())
        raw = _VERP_IN_TEXT.sub(verp.encode(), raw)
    return raw


def verp_for(signer: Signer, delivery: Delivery, domain: str = "bounces.gt.example.nl") -> str:
    return signer.verp_address(delivery.id, domain)
