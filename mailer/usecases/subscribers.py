"""Subscriber use cases: add, edit, unsubscribe, block, erase, reactivate, import, export.

What the CLI and the staff console do with people, each one transaction on `app.sessions`.
`actor` names who asked and goes into the consent history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mailer.bounces import service as bounces
from mailer.database.connect import session_scope
from mailer.usecases import privacy
from subscribers import queries, service
from subscribers.exporter import write_export
from subscribers.importer import ImportResult, Reject, import_file
from subscribers.models import Subscriber
from subscribers.queries import SubscriberFilter

if TYPE_CHECKING:
    from mailer.app import App

__all__ = [
    "Unsubscribed",
    "get_subscriber",
    "person_record",
    "add_subscriber",
    "edit_subscriber",
    "unsubscribe",
    "block",
    "erase",
    "reactivate",
    "import_subscribers",
    "export_subscribers",
]


@dataclass(frozen=True)
class Unsubscribed:
    email: str
    changed: bool  # False: not on that list, or already unsubscribed everywhere


def get_subscriber(app: App, email: str) -> Subscriber:
    """The person with this address; NotFoundError if there is none."""
    with session_scope(app.sessions) as session:
        return service.get_subscriber(session, email)


def person_record(app: App, email: str) -> dict[str, Any]:
    """Everything held on a person (the answer to an access request)."""
    with session_scope(app.sessions) as session:
        return privacy.person_record(session, email, app.settings)


def add_subscriber(app: App, data: service.SubscriberData, *, lists: Sequence[str] = (),
                   actor: str) -> Subscriber:
    with session_scope(app.sessions) as session:
        return service.add_subscriber(session, data, lists=lists, regions=app.settings.regions,
                                      source="cli", actor=actor)


def edit_subscriber(app: App, email: str, *, status: str | None = None,
                    lists: Sequence[str] = (), new_email: str | None = None,
                    attributes: dict[str, Any] | None = None, actor: str,
                    **changes: str | None) -> Subscriber:
    """Change a person's fields, then their status and lists, all or nothing."""
    with session_scope(app.sessions) as session:
        subscriber = service.edit_subscriber(
            session, email, regions=app.settings.regions, new_email=new_email,
            attributes=attributes, **changes,
        )
        if status is not None:
            service.set_status(session, subscriber.email, status, source="cli", actor=actor)
        if lists:
            service.subscribe(session, subscriber.email, lists, source="cli", actor=actor)
    return subscriber


def unsubscribe(app: App, email: str, list_slug: str | None = None, *,
                actor: str) -> Unsubscribed:
    """Leave one list, or every list; says whether anything changed."""
    with session_scope(app.sessions) as session:
        before = service.get_subscriber(session, email)
        was_on = {slug for sub, slug in queries.subscriptions_of(session, before.id)
                  if sub.status != "unsubscribed"}
        was_active = before.status == "active"
        subscriber = service.unsubscribe(session, email, list_slug, source="cli", actor=actor)
    # Leaving one list changes something if the person was on it; leaving all, if on any.
    changed = list_slug in was_on if list_slug else bool(was_on) or was_active
    return Unsubscribed(subscriber.email, changed)


def block(app: App, email: str, *, note: str = "", actor: str) -> Subscriber:
    """Stop all mail to a person: status blocked and the address suppressed."""
    with session_scope(app.sessions) as session:
        return service.block(session, email, actor=actor, note=note)


def erase(app: App, email: str, *, actor: str) -> None:
    """Erase a person everywhere (AVG art. 17); only a one-way hash stays suppressed."""
    with session_scope(app.sessions) as session:
        privacy.erase_person(session, email, actor=actor)


def reactivate(app: App, email: str, reason: str, *, actor: str) -> Subscriber:
    """Undo what bounces did to a person: status active, bounce score cleared."""
    with session_scope(app.sessions) as session:
        return bounces.reactivate(session, email, reason, actor=actor)


def import_subscribers(app: App, path: str | Path, *, lists: Sequence[str] = (),
                       dry_run: bool = False, on_reject: Callable[[Reject], None] | None = None,
                       actor: str) -> ImportResult:
    """Import a CSV file in one transaction; each rejected row goes to `on_reject`."""
    with session_scope(app.sessions) as session:
        return import_file(session, path, lists=lists, regions=app.settings.regions,
                           actor=actor, dry_run=dry_run, on_reject=on_reject)


def export_subscribers(app: App, flt: SubscriberFilter, out: TextIO, *, fmt: str = "csv",
                       delimiter: str = ",") -> int:
    """Stream the people `flt` selects to `out`; how many were written."""
    with session_scope(app.sessions) as session:
        return write_export(session, flt, out, fmt=fmt, delimiter=delimiter)
