"""One-off mail waiting in the outbox (sign-up mails, data copies the pages could not send at
once, deferred test sends): `mailer run`'s due work delivers it when its retry time comes, and
its daily purge forgets what is long done."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from mailer.database.connect import session_scope
from mailer.delivery.queries import purge_outbox

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["due_work", "purge_old"]

log = logging.getLogger("mailer.delivery")


def due_work(app: App, now: dt.datetime) -> None:
    """Deliver what the outbox owes now, through the app's one sender."""
    report = app.sender.deliver_due(now)
    if report.sent or report.failed:
        log.info("one-off mail: %d sent, %d failed, %d to retry",
                 report.sent, report.failed, report.retry)


def purge_old(app: App, now: dt.datetime) -> int:
    """Delete outbox rows done (sent or failed) more than delivery.outbox_retention_days ago."""
    before = now - dt.timedelta(days=app.settings.delivery.outbox_retention_days)
    with session_scope(app.sessions) as session:
        return purge_outbox(session, before)
