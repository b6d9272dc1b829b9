"""What `mailer run` starts beside the scheduler and the delivery engine: plug-in points.

Two kinds of plug-ins, each a list built by a function below (add yours with a small edit and a
lazy import, so a part that is not installed costs nothing):

* parts: long-running async tasks, `async def part(app: App, stop: asyncio.Event) -> None`,
  that return when `stop` is set (the bounce receiver and IMAP poller, the web server).
* due work: `def work(app: App, now: datetime) -> None`, called on a thread every
  delivery.poll_seconds and whenever a scheduled job wakes the service. This is how other parts
  schedule work that survives restarts: keep what is due in your own table (e.g. an event's
  reminder times) and do whatever is due when called; the database is the truth, so a restart
  loses nothing and a second run finds nothing left to do. Use your own conditional UPDATE to
  claim due rows so two services never do the same work twice.

For an exact wake-up time (rather than the next poll), also call
`mailer.service.scheduler.schedule_wakeup(scheduler, job_id, when)` from a part; the wake-up is
kept in
APScheduler's job store in the same database and simply runs the due work early.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from mailer.app import App

__all__ = ["Part", "DueWork", "parts", "due_work"]

log = logging.getLogger("mailer.service")

Part = Callable[[App, asyncio.Event], Awaitable[None]]
DueWork = Callable[[App, dt.datetime], None]


def parts(app: App) -> list[Part]:
    """The long-running parts to start beside the scheduler, given the settings."""
    found: list[Part] = []
    # Other parts add themselves here, e.g.:
    #   try:
    #       from mailer.intake.receiver import receiver_part
    #   except ImportError:
    #       pass
    #   else:
    #       found.append(receiver_part)
    # The subscriber pages on web.host:web.port, and hourly forgetting of unconfirmed sign-ups.
    from mailer.web.cleanup import cleanup_part
    from mailer.web.server import web_part

    found.extend((web_part, cleanup_part))
    # The staff console on its own listener (console.host:console.port), when enabled.
    if app.settings.console.enabled:
        from mailer.console.server import console_part

        found.append(console_part)
    # Bounces: the SMTP/LMTP receiver (bounces.receiver_port), the IMAP poller
    # (bounces.imap_host), and the daily purge of raw bounce mail past its retention.
    from mailer.service.purge import imap_part, purge_part, receiver_part

    if app.settings.bounces.receiver_port:
        found.append(receiver_part)
    if app.settings.bounces.imap_host:
        found.append(imap_part)
    found.append(purge_part)
    return found


def due_work(app: App) -> list[DueWork]:
    """Functions called on every scheduler poll to do whatever is due (reminders, clean-up)."""
    found: list[DueWork] = []
    # Meetings: queue the reminders (and nudge) that came due, send owed RSVP mail.
    from mailer.usecases.meeting_mail import due_work as event_due_work

    found.append(event_due_work)
    return found
