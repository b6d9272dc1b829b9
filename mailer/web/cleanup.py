"""Forget sign-ups that were never confirmed: the confirmation mail promises it.

A person who signs up on the web for a double opt-in list is stored (pending) so the link in the
confirmation mail has someone to confirm. If the link expires unused, nobody agreed to anything:
the person is deleted, with their consent history. Only people the web form created and who
never confirmed a list are deleted; a known subscriber's extra pending list is left alone.
Runs as `mailer run` due work (mailer.service_parts).
"""

from __future__ import annotations

import datetime as dt
import logging

from mailer.app import App
from mailer.db import session_scope
from mailer.web import queries

__all__ = ["purge_unconfirmed"]

log = logging.getLogger("mailer.web")


def purge_unconfirmed(app: App, now: dt.datetime) -> None:
    """Delete web sign-ups whose confirmation link expired unused."""
    cutoff = now - dt.timedelta(hours=app.settings.web.confirm_link_hours)
    with session_scope(app.sessions) as session:
        deleted = queries.delete_unconfirmed_signups(session, cutoff)
    if deleted:
        log.info("forgot %d sign-ups that were not confirmed in time", deleted)
