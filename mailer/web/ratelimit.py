"""Rate limits of the public forms, counted in the database so they hold across processes.

A sliding window: an attempt is allowed when fewer than `limit` attempts of the same bucket and
key were recorded in the last `window`. Keys (addresses, client addresses) are stored as keyed
hashes. Old attempts are deleted as new ones arrive, so the table stays small.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from mailer.kernel.clock import utcnow
from mailer.web import queries

__all__ = ["Limit", "RateLimited", "RateLimiter"]

WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Limit:
    """At most `limit` attempts per window for `key` in `bucket`; a limit of 0 or less is off."""

    bucket: str
    key: str
    limit: int


class RateLimited(Exception):
    """Too many attempts; the page asks to try again later (HTTP 429)."""

    def __init__(self, bucket: str) -> None:
        super().__init__(f"rate limit reached: {bucket}")
        self.bucket = bucket


class RateLimiter:
    def __init__(self, secret: str, window: dt.timedelta = WINDOW) -> None:
        self._key = hashlib.sha256(b"gt-mailer/rate:" + secret.encode()).digest()
        self.window = window

    def _hash(self, bucket: str, key: str) -> str:
        return hmac.new(self._key, f"{bucket}\n{key}".encode(), hashlib.sha256).hexdigest()

    def hit(
        self, session: Session, limits: Sequence[Limit], *, now: dt.datetime | None = None
    ) -> None:
        """Record one attempt against every limit, or raise RateLimited recording nothing."""
        now = now or utcnow()
        since = now - self.window
        queries.prune_rate_events(session, since)
        hashed = [(lim, self._hash(lim.bucket, lim.key)) for lim in limits if lim.limit > 0]
        for lim, key in hashed:
            if queries.count_rate_events(session, lim.bucket, key, since) >= lim.limit:
                raise RateLimited(lim.bucket)
        for lim, key in hashed:
            queries.add_rate_event(session, lim.bucket, key, now)
        session.flush()
