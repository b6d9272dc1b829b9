"""Tables for campaigns (one mailing to an audience) and deliveries (one message to one person)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, utcnow

__all__ = [
    "Campaign",
    "Segment",
    "Delivery",
    "DomainPause",
    "DeliveryWorker",
    "CAMPAIGN_STATUSES",
    "DELIVERY_STATUSES",
    "CAMPAIGN_KINDS",
]

CAMPAIGN_KINDS = ("newsletter", "invitation", "update", "cancellation", "reminder", "nudge")
CAMPAIGN_STATUSES = (
    "draft",  # made, not yet scheduled
    "scheduled",  # waits for scheduled_at
    "running",  # audience snapshotted into deliveries; workers are sending
    "paused",  # by an admin, or by the engine after repeated connection failures
    "finished",  # every delivery is sent, failed or bounced
    "cancelled",
    "missed",  # its time passed while the service was down, beyond the grace period
)
DELIVERY_STATUSES = (
    "queued",  # waiting to be claimed
    "sending",  # claimed by a worker (claimed_by, claimed_at); in flight
    "deferred",  # a 4xx; retried at next_attempt_at until the retry deadline
    "sent",  # accepted by the relay: never sent again
    "failed",  # permanent failure (5xx, retry deadline passed)
    "bounced",  # a bounce arrived for it after sending
    "skipped",  # the person was unsubscribed or suppressed between snapshot and send
)


class Campaign(Base):
    """A mailing: content, audience filter, schedule and state.

    The content is stored, not referenced, so editing the source file after scheduling does not
    change what is sent, and "view online" shows exactly what went out.
    """

    __tablename__ = "campaigns"
    # Campaign ids appear in links: on SQLite a deleted id must never be handed out again.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="newsletter")
    subject: Mapped[str] = mapped_column(String(998))
    preheader: Mapped[str] = mapped_column(String(500), default="")
    template: Mapped[str] = mapped_column(String(100), default="newsletter")
    # The body as written (Markdown or HTML), and its format.
    content: Mapped[str] = mapped_column(Text, default="")
    content_format: Mapped[str] = mapped_column(String(16), default="markdown")
    # Extra front-matter values available to the template as `campaign.meta`.
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Who gets it: {"lists": [slugs], "regions": [...], "organisations": [...],
    # "languages": [...]}; empty filters mean "no restriction".
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    pause_reason: Mapped[str] = mapped_column(Text, default="")
    # Set when the engine paused it because the relay was unreachable: it is resumed by itself
    # at resume_at; relay_outages counts the pauses in a row (the backoff doubles with each).
    resume_at: Mapped[dt.datetime | None]
    outage_since: Mapped[dt.datetime | None]
    relay_outages: Mapped[int] = mapped_column(default=0)
    scheduled_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Four-eyes (mailer.campaigns.approval): every edit raises `version` and withdraws the
    # approval; `approved_version` is the version someone other than `edited_by` approved.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    edited_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    approved_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    approved_version: Mapped[int | None] = mapped_column(Integer)
    approved_at: Mapped[dt.datetime | None]
    # "Ask for approval": who asked, for which version (a later edit makes the request stale).
    approval_requested_by: Mapped[str] = mapped_column(String(320), default="",
                                                       server_default="")
    approval_requested_version: Mapped[int | None] = mapped_column(Integer)
    approval_requested_at: Mapped[dt.datetime | None]
    # Written once when the campaign finishes: {"counts": {status: n}, "series": ...}. Nothing
    # is open then, so only sent → bounced can still change (counted live); the list and the
    # page read these instead of counting every delivery on every request.
    final_counts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Segment(Base):
    """A saved audience under a name: the console's audience builder saves it, and
    `mailer campaigns create --segment NAME` uses it. It holds the filters, not people: the
    people are found when a campaign made from it starts."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The same shape as Campaign.audience (lists, regions, organisations, languages,
    # job_titles, attributes).
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(320), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One message to one recipient of a campaign, and what became of it.

    Made for every recipient when the campaign starts (the audience snapshot). `status = 'sent'`
    is written in the same small transaction that records the relay's answer, so a restart never
    mails a sent delivery again.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # Null once the person is erased; the row stays for the campaign's statistics.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    first_attempt_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    last_code: Mapped[int | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(255), default="")

    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id", name="uq_deliveries_campaign_subscriber"),
        Index("ix_deliveries_campaign_status", "campaign_id", "status", "id"),
        {"sqlite_autoincrement": True},  # VERP addresses name delivery ids
    )


class DomainPause(Base):
    """Delivery to one receiving domain is paused: many recipients there were refused for one
    message- or sender-level reason in a short window. Deliveries to it wait (stay queued or
    deferred, never failed) until an admin resumes it (`resumed_at` set)."""

    __tablename__ = "domain_pauses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    attempted: Mapped[int] = mapped_column(Integer, default=0)
    paused_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resumed_at: Mapped[dt.datetime | None]
    resumed_by: Mapped[str] = mapped_column(String(320), default="")


class DeliveryWorker(Base):
    """A delivery worker that is running (or died without saying so).

    Rows `sending` are claimed by a worker name; when the worker is found dead (PostgreSQL: its
    session advisory lock on `id` is gone; one machine: its pid is gone; otherwise: no heartbeat
    for a lease) its rows are handed back at once instead of waiting for their lease.
    """

    __tablename__ = "delivery_workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
