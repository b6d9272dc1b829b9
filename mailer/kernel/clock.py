"""The clock: aware UTC datetimes, the one way GT Mailer asks for "now"."""

from __future__ import annotations

from subscribers.models import utcnow

__all__ = ["utcnow"]
