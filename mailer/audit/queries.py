"""The audit trail's SQL: newest-first pages and the filtered read for export."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.audit.models import AuditEntry

__all__ = ["entries"]


def entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    before_id: int | None = None,
    limit: int | None = 100,
) -> Sequence[AuditEntry]:
    """Audit rows, newest first, narrowed by the filters given; `before_id` pages back."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc())
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action))
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if before_id:
        stmt = stmt.where(AuditEntry.id < before_id)
    if limit:
        stmt = stmt.limit(limit)
    return session.scalars(stmt).all()
