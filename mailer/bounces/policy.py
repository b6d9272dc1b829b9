"""What a bounce does to a subscriber: the configurable policy, as pure decisions.

1. A hard bounce makes the subscriber `bounced` at once.
2. A soft bounce adds at most one point per (UTC) day to the subscriber's score.
3. A score whose last point is older than `stale_days` has gone stale: the next point starts
   a new score at 1 (a mailbox that was full last month says nothing about today).
4. At `soft_threshold` points the subscriber becomes `bounced`.
5. A complaint unsubscribes from every list and suppresses the address.
6. Everything else (unknown, delayed, auto-replies) changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailer.settings import BounceSettings

__all__ = ["Policy", "SoftScore", "next_soft_score"]


@dataclass(frozen=True)
class Policy:
    soft_threshold: int = 5
    stale_days: int = 7

    @classmethod
    def from_settings(cls, settings: BounceSettings) -> Policy:
        return cls(soft_threshold=settings.soft_threshold, stale_days=settings.stale_days)


@dataclass(frozen=True)
class SoftScore:
    score: int
    last_point_on: dt.date | None
    counted: bool  # False: a point was already given today
    reached: bool  # the threshold is reached: the subscriber becomes `bounced`


def next_soft_score(
    policy: Policy, score: int, last_point_on: dt.date | None, today: dt.date
) -> SoftScore:
    """The score after one more soft bounce on `today` (rules 2 to 4)."""
    if last_point_on == today:
        return SoftScore(score, last_point_on, False, score >= policy.soft_threshold)
    stale = last_point_on is None or (today - last_point_on).days > policy.stale_days
    new = 1 if stale else score + 1
    return SoftScore(new, today, True, new >= policy.soft_threshold)
