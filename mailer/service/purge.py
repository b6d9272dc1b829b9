"""A part of `mailer run`: forget raw bounce mail past its retention or the total cap, and
one-off mail long done from the outbox, daily."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from mailer.bounces.service import purge_with_settings
from mailer.database.connect import session_scope
from mailer.kernel.clock import utcnow
from mailer.usecases.outbox import purge_old

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["purge_part"]

log = logging.getLogger(__name__)
_DAY = 24 * 3600


def _purge_bounces(app: App) -> int:
    with session_scope(app.sessions) as session:
        return purge_with_settings(session, app.settings)


def _purge_outbox(app: App) -> int:
    return purge_old(app, utcnow())


async def purge_part(app: App, stop: asyncio.Event) -> None:
    """Forget raw bounce messages past their retention (bounces.retention_days, junk_retention_days)
    and beyond bounces.raw_total_mib, and outbox rows done more than
    delivery.outbox_retention_days ago: at start, then once a day."""
    while not stop.is_set():
        # Each purge on its own: one failing (say a locked table) does not hold up the other.
        for what, purge, done in (
            ("bounce", _purge_bounces, "purged the raw text of %d bounce message(s)"),
            ("outbox", _purge_outbox, "purged %d sent or failed one-off mail(s) from the outbox"),
        ):
            try:
                count = await asyncio.to_thread(purge, app)
                if count:
                    log.info(done, count)
            except Exception as exc:
                log.warning("%s purge failed (tried again tomorrow): %s", what, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=_DAY)

