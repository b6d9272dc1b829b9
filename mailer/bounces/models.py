"""Tables for received bounce messages, the bounces found in them, soft-bounce scores, and
the receiving domains whose delivery is paused after a mass failure."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, utcnow

__all__ = [
    "BounceMessage",
    "Bounce",
    "BounceScore",
    "KINDS",
    "COUNTED_KINDS",
    "SOURCES",
    "MATCHED_BY",
]

#: What a bounce record can be. Only the first three act on an address; `refused` (the message
#: or the sender was refused: spam, blocklist, size, authentication, rate) is the campaign's
#: problem, shown as an alert and counted by the domain brake; the rest are kept for review:
#: `unknown` (could not be understood), `delayed` (an `Action: delayed` warning), `autoreply`
#: (out-of-office, RFC 3834), `challenge` (a challenge-response system) and `unsubscribe` (mail
#: to the unsubscribe address).
KINDS = ("hard", "soft", "complaint", "refused", "unknown", "delayed", "autoreply", "challenge",
         "unsubscribe")
COUNTED_KINDS = ("hard", "soft", "complaint")
SOURCES = ("file", "smtp", "lmtp", "imap", "send-time")
MATCHED_BY = ("verp", "delivery", "recipient", "none")  # delivery: a send-time failure

_BIGINT = BigInteger().with_variant(Integer, "sqlite")


class BounceMessage(Base):
    """One message that arrived through an intake, kept whole (up to the size cap) for review.

    `fingerprint` (a hash of the message without the trace headers each hop adds) makes a second
    arrival of the same message a no-op. `raw` is emptied after settings.bounces.retention_days.
    """

    __tablename__ = "bounce_messages"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(998), default="")
    envelope_to: Mapped[str] = mapped_column(Text, default="")
    from_header: Mapped[str] = mapped_column(String(998), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    purged_at: Mapped[dt.datetime | None]


class Bounce(Base):
    """One recipient a bounce, complaint or other report is about, and what was done.

    Links are nullable: an unmatched report (forged token, unknown address) is still kept.
    `dedupe_key` is unique so one report counted twice is impossible.
    """

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    # Why (mailer.bounces.reasons.REASONS): user-unknown, blocked, too-large, ...
    reason: Mapped[str] = mapped_column(String(32), default="unknown", server_default="unknown")
    action: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")
    recipient: Mapped[str] = mapped_column(String(320), default="")
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("bounce_messages.id", ondelete="CASCADE"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        _BIGINT, ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    matched_by: Mapped[str] = mapped_column(String(16), default="none")
    # None: the report carried no token of ours; False: it carried one that failed its signature.
    token_valid: Mapped[bool | None] = mapped_column(Boolean)
    # What the policy did, for people reading `bounces show` (e.g. "subscriber bounced").
    outcome: Mapped[str] = mapped_column(Text, default="")
    # Kept for review: a report that would act on someone but carried no valid token of ours
    # (anyone can send one). `bounces apply ID` acts on it; until then it changes nothing.
    held: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)

    __table_args__ = (
        Index("ix_bounces_campaign_kind", "campaign_id", "kind"),
        Index("ix_bounces_kind_received", "kind", "received_at"),
        Index("ix_bounces_reason_received", "reason", "received_at"),
    )


class BounceScore(Base):
    """A subscriber's soft-bounce score: at most one point per day, reset when it goes stale."""

    __tablename__ = "bounce_scores"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(Integer, default=0)
    last_point_on: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
