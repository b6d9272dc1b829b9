"""How many messages the relay may take now, under its limits per second, minute, hour and day.

Everything we hand the relay counts: campaign deliveries, the one-to-one meeting mail
(confirmations, reminders) and the outbox's one-off mail (sign-up mails, data copies, test
sends), sent or in flight, by every process sharing the database. Exchange
Online counts per mailbox, not per program part, and a mailbox over its limit is blocked for a
day, so both senders ask this one budget before they claim work.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from mailer.campaigns import queries as campaign_queries
from mailer.delivery import queries as outbox_queries
from mailer.events import queries as event_queries
from mailer.settings import SmtpSettings

__all__ = ["RATE_WINDOWS", "RelayBudget"]

RATE_WINDOWS = (
    ("rate_per_second", 1.0),
    ("rate_per_minute", 60.0),
    ("rate_per_hour", 3600.0),
    ("rate_per_day", 86400.0),
)
_SPAN_NAMES = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
# Longest pause before asking again: a window may free up early (a failed send leaves it).
_MAX_WAIT = 5.0


class RelayBudget:
    def __init__(self, smtp: SmtpSettings) -> None:
        self.limits = [(getattr(smtp, key), span) for key, span in RATE_WINDOWS
                       if getattr(smtp, key) > 0]
        #: Why the last `room` was none (which window is full, with what), for the log.
        self.full = ""

    def lock(self, session: Session) -> None:
        """Serialise claims across workers until the transaction ends. Take it before reading
        the clock: a worker that waited for the lock must not count a window that has moved."""
        if self.limits:
            campaign_queries.lock_rate_window(session)

    def room(self, session: Session, now: dt.datetime, want: int,
             lease_expired: dt.datetime | None = None) -> tuple[int, float]:
        """(how many of `want` may be claimed now, seconds to wait when that is none).

        Call it in the transaction that then claims the work: the window is locked until it
        commits, so two workers cannot both take the last slots. Rows `sending` since before
        `lease_expired` belong to no living worker and do not count.
        """
        self.full = ""
        if not self.limits or want <= 0:
            return max(want, 0), 0.0
        campaign_queries.lock_rate_window(session)
        allowed_now, wait = want, 0.0
        for allowed, span in self.limits:
            since = now - dt.timedelta(seconds=span)
            used, oldest = campaign_queries.in_window(session, since, lease_expired)
            for other in (event_queries.mails_in_window, outbox_queries.outbox_in_window):
                other_used, other_oldest = other(session, since)
                used += other_used
                if other_oldest is not None and (oldest is None or other_oldest < oldest):
                    oldest = other_oldest
            free = allowed - used
            if free <= 0:
                self.full = (f"the relay limit of {allowed} per {_SPAN_NAMES[span]} is used "
                             f"({used} sent or in flight)")
                until = (oldest + dt.timedelta(seconds=span) - now).total_seconds() \
                    if oldest else 0.2
                wait = max(wait, min(max(until, 0.02), _MAX_WAIT))
            allowed_now = min(allowed_now, free)
        if allowed_now <= 0:
            return 0, wait or 0.2
        return allowed_now, 0.0
