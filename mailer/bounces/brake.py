"""The brake on mass failure, as a pure decision: should delivery to a receiving domain pause?

When a relay's IP is blocklisted, or a newsletter is too large, or our DMARC fails, every
recipient at a big provider is refused for the same message- or sender-level reason within
minutes. Going on only burns reputation, so delivery to that domain pauses until an admin
resumes it. Address-level failures (unknown users) never trigger it: those are the addresses'
problem, and one bad list import must not stop mail to everyone else there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from mailer.bounces.reasons import MESSAGE_LEVEL
from mailer.settings import BounceSettings

__all__ = ["BrakeRule", "PauseDecision", "decide", "domain_of"]


@dataclass(frozen=True)
class BrakeRule:
    recipients: int = 20  # at least this many distinct recipients refused ...
    share: float = 0.05  # ... and at least this share of those mailed there ...
    window: dt.timedelta = dt.timedelta(minutes=10)  # ... within this window

    @classmethod
    def from_settings(cls, settings: BounceSettings) -> BrakeRule:
        return cls(recipients=settings.brake_recipients, share=settings.brake_share,
                   window=dt.timedelta(minutes=settings.brake_window_minutes))


@dataclass(frozen=True)
class PauseDecision:
    domain: str
    reason: str
    failures: int
    attempted: int

    @property
    def detail(self) -> str:
        return (f"{self.failures} of {self.attempted} recipients at {self.domain} refused "
                f"({self.reason}) within the brake window")


def domain_of(address: str) -> str:
    """The receiving domain of an address, lower case; "" without one."""
    local, at, domain = (address or "").strip().strip("<>").rpartition("@")
    return domain.lower().rstrip(".") if at and local and "." in domain else ""


def decide(
    rule: BrakeRule,
    failures: Mapping[tuple[str, str], int],
    attempted: Mapping[str, int],
    already_paused: frozenset[str] | set[str] = frozenset(),
) -> list[PauseDecision]:
    """The domains to pause: `failures` counts distinct recipients refused per (domain, reason)
    within the window, `attempted` the deliveries that went to each domain in it."""
    decisions: dict[str, PauseDecision] = {}
    for (domain, reason), count in sorted(failures.items(), key=lambda kv: -kv[1]):
        if not domain or domain in already_paused or domain in decisions:
            continue
        if reason not in MESSAGE_LEVEL or count < rule.recipients:
            continue
        tried = max(attempted.get(domain, 0), count)
        if count / tried >= rule.share:
            decisions[domain] = PauseDecision(domain, reason, count, tried)
    return list(decisions.values())
