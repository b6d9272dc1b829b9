"""The outbox: one-off mail (sign-up confirmations, data copies, test sends) on its way out.

A row is written before the message is handed to the relay, so a 4xx is retried with the
campaign engine's backoff until the delivery deadline, across restarts, and the relay budget
counts it like any other message. The message bytes are dropped once the row is done (sent or
failed): a data copy holds a person's data, and the row only needs to stay for the budget's
windows and the record of what was sent.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, utcnow

__all__ = ["OutboxMail", "OUTBOX_STATUSES"]

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")


class OutboxMail(Base):
    """One message to one recipient, composed when it was queued."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What it is, for logs and `mailer` output: "confirm-subscription", "data-copy", "test", ...
    kind: Mapped[str] = mapped_column(String(32))
    # Whom it concerns, when a subscriber: erasing them removes their mail still owed.
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    envelope_from: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str] = mapped_column(Text)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    first_attempt_at: Mapped[dt.datetime | None]
    # A deferred (4xx) message is not tried again before this.
    next_attempt_at: Mapped[dt.datetime | None]
    # Set when a sender takes it ("sending"); an old claim is a crashed sender's.
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]

    __table_args__ = (Index("ix_outbox_status", "status", "id"),)
