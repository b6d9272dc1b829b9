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
# Longest pause before asking again: a window may free up early (a failed send leaves it).
_MAX_WAIT = 5.0


class RelayBudget:
    def __init__(self, smtp: SmtpSettings) -> None:
        self.limits = [(getattr(smtp, key), span) for key, span in RATE_WINDOWS
                       if getattr(smtp, key) > 0]

    def room(self, session: Session, now: dt.datetime, want: int) -> tuple[int, float]:
        """(how many of `want` may be claimed now, seconds to wait when that is none).

        Call it in the transaction that then claims the work: the window is locked until it
        commits, so two workers cannot both take the last slots.
        """
        if not self.limits or want <= 0:
            return max(want, 0), 0.0
        campaign_queries.lock_rate_window(session)
        allowed_now, wait = want, 0.0
        for allowed, span in self.limits:
            since = now - dt.timedelta(seconds=span)
            used, oldest = campaign_queries.in_window(session, since)
            for other in (event_queries.mails_in_window, outbox_queries.outbox_in_window):
                other_used, other_oldest = other(session, since)
                used += other_used
                if other_oldest is not None and (oldest is None or other_oldest < oldest):
                    oldest = other_oldest
            free = allowed - used
            if free <= 0:
                until = (oldest + dt.timedelta(seconds=span) - now).total_seconds() \
                    if oldest else 0.2
                wait = max(wait, min(max(until, 0.02), _MAX_WAIT))
            allowed_now = min(allowed_now, free)
        if allowed_now <= 0:
            return 0, wait or 0.2
        return allowed_now, 0.0
