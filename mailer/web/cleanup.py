"""Forget sign-ups that were never confirmed: the confirmation mail promises it.

A person who signs up on the web for a double opt-in list is stored (pending) so the link in the
confirmation mail has someone to confirm. If the link expires unused, nobody agreed to anything:
the person is deleted, with their consent history. Only people the web form created and who
never confirmed a list are deleted; a known subscriber's extra pending list is left alone.
`mailer run` does this hourly (cleanup_part, in mailer.service.parts): a separate part rather
than due work on every poll, so it does not take the database's write lock every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING

from mailer.database.connect import session_scope
from mailer.kernel.clock import utcnow
from subscribers import queries

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["purge_unconfirmed", "cleanup_part", "INTERVAL"]

INTERVAL = dt.timedelta(hours=1)

log = logging.getLogger("mailer.web")


def purge_unconfirmed(app: App, now: dt.datetime) -> None:
    """Delete web sign-ups whose confirmation link expired unused."""
    cutoff = now - dt.timedelta(hours=app.settings.web.confirm_link_hours)
    with session_scope(app.sessions) as session:
        deleted = queries.delete_unconfirmed_signups(session, cutoff)
    if deleted:
        log.info("forgot %d sign-ups that were not confirmed in time", deleted)


async def cleanup_part(app: App, stop: asyncio.Event) -> None:
    """Purge unconfirmed sign-ups at start and then every hour, until `stop` is set."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(purge_unconfirmed, app, utcnow())
        except Exception:  # a failed clean-up must not stop the service; try again later
            log.exception("could not forget unconfirmed sign-ups")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL.total_seconds())
