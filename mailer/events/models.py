"""Tables for meetings, the answers people give, and the mail the meeting itself sends.

Times are stored as aware UTC (UTCDateTime) with the IANA zone the meeting is held in, so a
meeting at 13.30 in Amsterdam stays at 13.30 whatever the daylight-saving rules of its date.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, utcnow

__all__ = [
    "Event",
    "Rsvp",
    "RsvpChange",
    "EventMail",
    "CalendarReply",
    "REPLY_OUTCOMES",
    "EVENT_STATUSES",
    "ANSWERS",
    "EVENT_MAIL_KINDS",
    "EVENT_MAIL_STATUSES",
    "ORGANIZER_FORMATS",
    "ORGANIZER_LEGACY",
    "ORGANIZER_SEALED",
]

EVENT_STATUSES = ("active", "cancelled")
ANSWERS = ("yes", "no", "maybe")
EVENT_MAIL_KINDS = ("confirmation", "waitlist", "seat", "reminder", "nudge")
EVENT_MAIL_STATUSES = ("pending", "sending", "sent", "failed", "skipped")
#: What became of an answer from a calendar: recorded as the RSVP page would, or kept for review.
REPLY_OUTCOMES = ("recorded", "review")
#: The shape of a meeting's ORGANIZER reply token (kernel.tokens.Signer.reply_address): the
#: sealed ids, or the earlier base36 row ids, kept by meetings whose invitations went out in it.
ORGANIZER_SEALED = "sealed"
ORGANIZER_LEGACY = "legacy"
ORGANIZER_FORMATS = (ORGANIZER_SEALED, ORGANIZER_LEGACY)


class Event(Base):
    """A meeting. `uid` never changes, so calendars move or remove it instead of adding a copy;
    `sequence` goes up with every change calendars must apply (time, place, cancellation)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(100), default="")
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Amsterdam")
    venue: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    online_url: Mapped[str] = mapped_column(String(500), default="")
    # None: no limit on the number of seats.
    capacity: Mapped[int | None] = mapped_column(Integer)
    # None: answers are taken until the meeting starts.
    rsvp_deadline: Mapped[dt.datetime | None]
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    # Calendars take an update as the same meeting only from the same ORGANIZER, so this never
    # changes once made: new meetings are sealed; rows from before migration 0014 (whose
    # invitations may be out) and rows written outside the ORM get the server default, legacy.
    organizer_format: Mapped[str] = mapped_column(
        String(16), default=ORGANIZER_SEALED, server_default=ORGANIZER_LEGACY
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Event ids appear in RSVP links: never reused on SQLite.
    __table_args__ = (Index("ix_events_status_starts_at", "status", "starts_at"),
                      {"sqlite_autoincrement": True})

    @property
    def answers_until(self) -> dt.datetime:
        return self.rsvp_deadline or self.starts_at


class Rsvp(Base):
    """One person's current answer to one meeting.

    A yes beyond the capacity waits (`waiting`); `waiting_since` orders the waiting list.
    """

    __tablename__ = "rsvps"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    answer: Mapped[str] = mapped_column(String(8))
    waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    waiting_since: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("event_id", "subscriber_id", name="uq_rsvps_event_subscriber"),
        Index("ix_rsvps_event_answer", "event_id", "answer", "waiting"),
    )


class RsvpChange(Base):
    """Every answer given, in order, so "when did they say yes" survives a later change."""

    __tablename__ = "rsvp_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    rsvp_id: Mapped[int] = mapped_column(ForeignKey("rsvps.id", ondelete="CASCADE"), index=True)
    answer: Mapped[str] = mapped_column(String(8))
    waiting: Mapped[bool] = mapped_column(Boolean, default=False)
    # "web", "cli", or "waitlist" when a freed seat moved the person up.
    source: Mapped[str] = mapped_column(String(16), default="web")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EventMail(Base):
    """A one-to-one mail a meeting owes a person: confirmation, seat, reminder, nudge.

    Written in the transaction that decides it (so it is never lost), sent afterwards by the
    service's event-mail job. `key` makes each mail unique per person: a reminder for one start
    time is never sent twice, and moving the meeting gives new keys, so the reminders move too.
    """

    __tablename__ = "event_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Set when a sender takes the mail ("sending"); a claim older than a few minutes is a crashed
    # sender's, and the mail is taken again.
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    # A deferred (4xx) mail is tried again from next_attempt_at, until the delivery deadline
    # counted from first_attempt_at (the campaign engine's rule).
    first_attempt_at: Mapped[dt.datetime | None]
    next_attempt_at: Mapped[dt.datetime | None]

    __table_args__ = (
        UniqueConstraint("event_id", "subscriber_id", "key", name="uq_event_mails_person_key"),
        Index("ix_event_mails_status", "status", "id"),
    )


class CalendarReply(Base):
    """An iTIP REPLY that arrived (Accept / Tentative / Decline in someone's calendar).

    Every one is kept: `recorded` ones changed the person's answer (the change is in
    rsvp_changes with source "calendar"); `review` ones changed nothing and say why in
    `reason` (no valid token, another attendee, another meeting, answers closed, ...).
    `fingerprint` makes a second arrival of the same message a no-op.
    """

    __tablename__ = "calendar_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    source: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    from_header: Mapped[str] = mapped_column(String(998), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    uid: Mapped[str] = mapped_column(String(255), default="")
    attendee: Mapped[str] = mapped_column(String(320), default="")
    partstat: Mapped[str] = mapped_column(String(32), default="")
    prodid: Mapped[str] = mapped_column(String(200), default="")
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    # None: no token of ours found; False: one was found and failed its signature.
    token_valid: Mapped[bool | None] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
