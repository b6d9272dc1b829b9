"""The suppression list as use cases: add, list, remove (the CLI's `mailer suppress`).

Suppression wins over every list. A change is one transaction on `app.sessions` and is written
to the audit trail by the address's hash, never the address itself: an erased person's hash is
on the list anyway, and the trail must not bring their address back.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from mailer import audit
from mailer.audit import Actor
from mailer.database.connect import session_scope
from mailer.usecases.campaigns import as_actor
from subscribers import queries, service
from subscribers.models import Suppression

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["suppress", "suppression_list", "unsuppress"]

log = logging.getLogger("mailer.subscribers")


def suppress(app: App, emails: Sequence[str], reason: str = "manual", *, note: str = "",
             actor: Actor | str) -> list[str]:
    """Suppress the addresses, all or none (one bad address refuses them all); the ones that
    were not suppressed before, as given."""
    who = as_actor(actor)
    with session_scope(app.sessions) as session:
        added = [e for e in emails if service.suppress(session, e, reason, note=note)]
        for email in added:
            audit.record(session, who, "suppression.add", ("suppression", _key(email)), None,
                         {"reason": reason, "note": note})
    if added:
        log.info("%s suppressed %d address(es) (%s)", who.name, len(added), reason)
    return added


def suppression_list(app: App, reasons: Collection[str] = ()) -> list[Suppression]:
    """The suppressed addresses, oldest first, only those for `reasons` if given."""
    with session_scope(app.sessions) as session:
        return queries.suppression_list(session, reasons)


def unsuppress(app: App, email: str, *, actor: Actor | str) -> None:
    """Take an address (or an erased person's hash, by their address) off the list."""
    who = as_actor(actor)
    with session_scope(app.sessions) as session:
        service.unsuppress(session, email)
        audit.record(session, who, "suppression.remove", ("suppression", _key(email)))
    log.info("%s took an address off the suppression list", who.name)


def _key(email: str) -> str:
    return service.email_hash(email)[:16]
