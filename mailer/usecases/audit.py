"""Reading the audit trail (admins in the console, anyone with the database at the CLI)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailer.audit import Actor
from mailer.audit import queries as audit_queries
from mailer.audit.models import AuditEntry
from mailer.usecases.users import require

__all__ = ["entries", "as_dict"]


def entries(session: Session, actor: Actor, *, who: str | None = None,
            action: str | None = None, object_type: str | None = None,
            object_id: str | None = None, before_id: int | None = None,
            limit: int | None = 100) -> Sequence[AuditEntry]:
    require(actor, "audit.read")
    return audit_queries.entries(session, actor=who, action=action, object_type=object_type,
                                 object_id=object_id, before_id=before_id, limit=limit)


def as_dict(entry: AuditEntry) -> dict[str, object]:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
            "action": entry.action, "object_type": entry.object_type,
            "object_id": entry.object_id, "before": entry.before, "after": entry.after,
            "origin": entry.origin}
