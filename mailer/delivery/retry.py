"""The one retry rule for everything we send: newsletters (the delivery engine) and one-off
mail (the sender, meeting mail).

A 4xx is tried again after `delivery.retry_base_seconds`, doubling with each attempt up to an
hour, until `delivery.retry_deadline_hours` after the first attempt, then it fails; a permanent
answer (a 5xx but 552, as transport classifies it) fails at once; a relay that could not be
reached counts no attempt.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailer.delivery import transport
from mailer.settings import DeliverySettings

__all__ = ["Verdict", "judge", "retry_time"]

# The longest wait between two tries of a deferred message.
_MAX_BACKOFF = 3600.0


def retry_time(
    delivery: DeliverySettings, attempts: int, first: dt.datetime, now: dt.datetime
) -> dt.datetime | None:
    """When to try a deferred (4xx) message again after `attempts` earlier tries, or None when
    that would be past the retry deadline."""
    wait = min(delivery.retry_base_seconds * 2**attempts, _MAX_BACKOFF)
    at = now + dt.timedelta(seconds=wait)
    if at > first + dt.timedelta(hours=delivery.retry_deadline_hours):
        return None
    return at


@dataclass(frozen=True)
class Verdict:
    """What to record for one try: `sent`, `retry` (at `next_at`), `failed`, or `released`
    (not tried: the relay could not be reached; no attempt counts)."""

    status: str
    error: str = ""
    next_at: dt.datetime | None = None
    first_at: dt.datetime | None = None
    # The reply code a failure or retry is recorded with (451 when the relay gave none).
    code: int = 0


def judge(
    outcome: transport.Outcome,
    delivery: DeliverySettings,
    *,
    attempts: int,
    first_attempt_at: dt.datetime | None,
    now: dt.datetime,
) -> Verdict:
    """The verdict on one outcome under the retry rule."""
    if outcome.kind == "connection":
        return Verdict("released", outcome.message)
    first = first_attempt_at or now
    if outcome.kind == "sent":
        return Verdict("sent", first_at=first)
    code = outcome.code or 451
    error = f"{code} {outcome.message}".strip()[:1000]
    if outcome.kind == "temporary":
        at = retry_time(delivery, attempts, first, now)
        if at is not None:
            return Verdict("retry", error, at, first, code)
        error = f"{error} (retry deadline passed)"
    return Verdict("failed", error, None, first, code)
