"""A part of `mailer run`: forget raw bounce mail past bounces.retention_days, once a day."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from mailer.bounces.service import purge
from mailer.database.connect import session_scope

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["purge_part"]

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

