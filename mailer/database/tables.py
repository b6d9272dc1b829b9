"""Every table GT Mailer has, imported in one place so Alembic and tests see the whole schema."""

from __future__ import annotations

from mailer.accounts.models import ConsoleSession, ConsoleUser, OidcFlow
from mailer.audit.models import AuditEntry
from mailer.bounces.models import Bounce, BounceMessage, BounceScore
from mailer.campaigns.models import Campaign, Delivery, DeliveryWorker, DomainPause, Segment
from mailer.delivery.models import OutboxMail
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
    "AuditEntry",
    "ConsoleSession",
    "ConsoleUser",
    "OidcFlow",
    "Bounce",
    "BounceMessage",
    "BounceScore",
    "CalendarReply",
    "Campaign",
    "ConsentEvent",
    "Delivery",
    "DeliveryWorker",
    "DomainPause",
    "Event",
    "EventMail",
    "MailingList",
    "OutboxMail",
    "RateEvent",
    "Segment",
    "Rsvp",
    "RsvpChange",
    "Subscriber",
    "Subscription",
    "Suppression",
]
