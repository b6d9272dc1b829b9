"""The web pages' own table: attempts counted by the rate limits of the public forms.

Counters live in the database, not in memory, so the limits hold across the processes and
restarts of `mailer web` and `mailer run`. Keys are keyed hashes, never addresses in the clear:
the table says how often something was tried, not by whom.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, utcnow

__all__ = ["RateEvent"]


class RateEvent(Base):
    """One attempt at a rate-limited action (bucket), by one address or client (key)."""

    __tablename__ = "web_rate_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # What was tried: "subscribe-address", "subscribe-client", "export", ...
    bucket: Mapped[str] = mapped_column(String(32))
    # HMAC-SHA256 (hex) of the address or client, keyed with the secret key.
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)

    __table_args__ = (Index("ix_web_rate_events_bucket_key_at", "bucket", "key", "at"),)
