"""Every table GT Mailer has, imported in one place so Alembic and tests see the whole schema."""

from __future__ import annotations

from mailer.bounces.models import Bounce, BounceMessage, BounceScore
from mailer.campaigns.models import Campaign, Delivery, DomainPause
from mailer.events.models import CalendarReply, Event, EventMail, Rsvp, RsvpChange
from mailer.web.models import RateEvent
from subscribers.models import (
    Base,
    ConsentEvent,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
)

__all__ = [
    "Base",
    "Bounce",
    "BounceMessage",
    "BounceScore",
    "CalendarReply",
    "Campaign",
    "ConsentEvent",
    "Delivery",
    "DomainPause",
    "Event",
    "EventMail",
    "MailingList",
    "RateEvent",
    "Rsvp",
    "RsvpChange",
    "Subscriber",
    "Subscription",
    "Suppression",
]
