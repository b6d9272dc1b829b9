"""The audit trail: `record(...)` adds one append-only row for a change; `Actor` says who.

The use cases (mailer.usecases) call `record` in the same transaction as the change, so a change
and its audit row are committed together or not at all. Console, CLI and API all go through
the use cases, so nothing changes without a row here.
"""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mailer.audit.models import AuditEntry
from subscribers.controls import strip_controls

__all__ = ["Actor", "record", "cli_actor", "jsonable"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a console user (with id and role) or an OS user at the command line."""

    name: str
    user_id: int | None = None
    role: str = ""
    origin: str = "cli"


def cli_actor() -> Actor:
    """The person at the command line: the OS user, as `os:NAME`."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        name = "unknown"
    return Actor(name=f"os:{name}", origin="cli")


def jsonable(value: Any) -> Any:
    """Plain JSON values (datetimes as ISO text) for the before/after columns."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def record(
    session: Session,
    actor: Actor,
    action: str,
    obj: tuple[str, object] | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    origin: str | None = None,
) -> AuditEntry:
    """Add one audit row in the caller's transaction. `obj` is (type, id), e.g. ("campaign", 4)."""
    object_type, object_id = obj if obj is not None else ("", "")
    entry = AuditEntry(
        actor=strip_controls(actor.name),  # `audit` prints it; $LOGNAME or a typed address
        actor_user_id=actor.user_id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        origin=strip_controls(origin or actor.origin),
    )
    session.add(entry)
    session.flush()
    return entry
