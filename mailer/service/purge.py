"""The bounce package's service parts for `mailer run`: receiver, IMAP poller, daily purge.

Each is `async def part(app, stop)`, returning at once when its settings turn it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailer.app import App
from mailer.bounces.service import purge
from mailer.database.connect import session_scope
from mailer.intake.imap import imap_part
from mailer.intake.receiver import receiver_part

__all__ = ["PARTS", "receiver_part", "imap_part", "purge_part"]

log = logging.getLogger(__name__)
_DAY = 24 * 3600


def _purge(app: App) -> int:
    with session_scope(app.sessions) as session:
        return purge(session, app.settings.bounces.retention_days)


async def purge_part(app: App, stop: asyncio.Event) -> None:
    """Forget raw bounce messages past bounces.retention_days: at start, then once a day."""
    while not stop.is_set():
        try:
            count = await asyncio.to_thread(_purge, app)
            if count:
                log.info("purged the raw text of %d bounce message(s)", count)
        except Exception as exc:
            log.warning("bounce purge failed (tried again tomorrow): %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=_DAY)


PARTS = [receiver_part, imap_part, purge_part]
