"""The audit trail's one table: every change, by whom, to what, before and after, from where."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, utcnow

__all__ = ["AuditEntry"]


class AuditEntry(Base):
    """One change. Rows are only ever added: the migration installs triggers refusing
    UPDATE and DELETE on both SQLite and PostgreSQL."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # Who: "anna@gt.example.nl" (console), "os:mailer" (CLI as that OS user), "system".
    actor: Mapped[str] = mapped_column(String(320), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    # What: "campaign.approve", "user.add", "signin", ...
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    # From where: "console 127.0.0.1", "cli", "api", "service".
    origin: Mapped[str] = mapped_column(String(100), default="")

    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)
