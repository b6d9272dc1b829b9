"""Bounce use cases: records, figures, the review queue and "apply", domain pauses, reactivation.

What `mailer bounces` (and `mailer subscribers reactivate`) and the console's bounce pages do,
as session-level functions: the caller owns the transaction, so a change and its audit row are
committed together. Reading needs `bounces.read`, acting `bounces.manage`. `by` is the name the
bounces package keeps with the record (`--by` at the CLI, the staff member in the console); the
audit row names the actor. Audit rows never hold a person's address (they outlive an erasure):
people are named by row id, as in mailer.usecases.subscribers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from mailer import audit
from mailer.audit import Actor
from mailer.bounces import queries, reasons, service
from mailer.bounces.models import Bounce
from mailer.kernel.clock import utcnow
from mailer.settings import Settings
from mailer.usecases.subjects import shown_subjects
from mailer.usecases.users import require
from subscribers import service as subscribers
from subscribers.models import Subscriber

__all__ = [
    "FIGURE_WEEKS", "records", "record", "held", "campaign_stats", "stats_by", "over_time",
    "apply", "pauses", "resume_domain", "reactivate", "reactivate_matching", "purge",
]

#: How many weeks the figures over time cover (this week last).
FIGURE_WEEKS = 8
#: How many receiving domains the figures over time show (the busiest).
FIGURE_DOMAINS = 10


def records(session: Session, actor: Actor, *, campaign_id: int | None = None,
            kind: str | None = None, reason: str | None = None,
            limit: int = 200) -> list[dict[str, Any]]:
    """Bounce records, newest first, with their reason and outcome (`bounces ls`)."""
    require(actor, "bounces.read")
    return service.list_bounces(session, campaign_id=campaign_id, kind=kind, reason=reason,
                                limit=limit)


def record(session: Session, actor: Actor, bounce_id: int) -> dict[str, Any]:
    """One record with its message, raw text included unless purged (`bounces show`)."""
    require(actor, "bounces.read")
    return service.get_bounce(session, bounce_id)


def held(session: Session, actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
    """The review queue: reports that carried no valid token, so acted on no one."""
    require(actor, "bounces.read")
    return service.held_for_review(session, limit)


def campaign_stats(session: Session, settings: Settings, actor: Actor,
                   campaign_id: int | None = None) -> list[dict[str, Any]]:
    """Per campaign: sent, bounces, complaints and rates; one campaign also has its alert
    `flags`. Subjects as people received them (a meeting's is a per-person template)."""
    require(actor, "bounces.read")
    if campaign_id is not None:
        rows = [service.campaign_bounce_summary(session, campaign_id,
                                                settings=settings.bounces)]
    else:
        rows = service.bounce_stats(session)
    shown = shown_subjects(session, settings, [r["campaign_id"] for r in rows])
    for row in rows:
        row["subject"] = shown.get(row["campaign_id"], row["subject"])
    return rows


def stats_by(session: Session, actor: Actor, by: str, *, campaign_id: int | None = None,
             since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Records counted by reason (with severity and kinds) or by receiving domain."""
    require(actor, "bounces.read")
    return service.stats_by(session, by, campaign_id=campaign_id, since=since)


def _week_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def over_time(session: Session, actor: Actor, *, weeks: int = FIGURE_WEEKS,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """Records per week (Monday, UTC) by reason and by receiving domain, this week last:
    `weeks` (the Mondays), `reasons` and `domains` (the busiest FIGURE_DOMAINS), each row with
    `counts` per week and `total`. One grouped query."""
    require(actor, "bounces.read")
    this_week = _week_of((now or utcnow()).date())
    mondays = [this_week - dt.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    index = {monday: i for i, monday in enumerate(mondays)}
    since = dt.datetime.combine(mondays[0], dt.time(), tzinfo=dt.UTC)
    by_reason: dict[str, list[int]] = {}
    by_domain: dict[str, list[int]] = {}
    for day, reason, domain, count in queries.counts_by_day(session, since):
        week = index.get(_week_of(day))
        if week is None:
            continue
        by_reason.setdefault(reason, [0] * weeks)[week] += count
        by_domain.setdefault(domain or "(none)", [0] * weeks)[week] += count

    def rows(counts: dict[str, list[int]], key: str) -> list[dict[str, Any]]:
        out = [{key: name, "counts": per_week, "total": sum(per_week)}
               for name, per_week in counts.items()]
        return sorted(out, key=lambda r: (-r["total"], r[key]))

    reason_rows = rows(by_reason, "reason")
    for row in reason_rows:
        row["severity"] = reasons.severity(row["reason"], "5")
    return {"weeks": mondays, "reasons": reason_rows,
            "domains": rows(by_domain, "domain")[:FIGURE_DOMAINS]}


def apply(session: Session, settings: Settings, actor: Actor, bounce_id: int, *,
          by: str = "") -> Bounce:
    """Act on a held report as if it had carried our token (`bounces apply`)."""
    require(actor, "bounces.manage")
    before = queries.bounce_by_id(session, bounce_id)
    outcome_before = before.outcome if before is not None else ""
    bounce = service.apply_held(session, bounce_id, settings=settings.bounces, actor=by)
    audit.record(session, actor, "bounce.apply", ("bounce", bounce.id),
                 {"held": True, "outcome": outcome_before},
                 {"held": False, "outcome": bounce.outcome, "kind": bounce.kind,
                  "reason": bounce.reason, "subscriber": bounce.subscriber_id})
    return bounce


def pauses(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Receiving domains the brake paused, why, and how many messages wait."""
    require(actor, "bounces.read")
    return service.domain_pauses(session)


def resume_domain(session: Session, actor: Actor, domain: str, *, by: str = "") -> str:
    """Let delivery to a paused domain go on; the domain as stored (lower case)."""
    require(actor, "bounces.manage")
    service.resume_domain(session, domain, actor=by)
    name = domain.strip().lower().lstrip("@").rstrip(".")
    audit.record(session, actor, "domain.resume", ("domain", name), {"paused": True},
                 {"paused": False})
    return name


def reactivate(session: Session, actor: Actor, email: str, reason: str, *,
               by: str = "") -> Subscriber:
    """Mail a bounced (or complained) person again: status active, bounce score cleared."""
    require(actor, "bounces.manage")
    status_before = _status_of(session, email)
    sub = service.reactivate(session, email, reason, actor=by)
    audit.record(session, actor, "subscriber.reactivate", ("subscriber", sub.id),
                 {"status": status_before}, {"status": sub.status, "reason": reason.strip()})
    return sub


def _status_of(session: Session, email: str) -> str:
    try:
        return subscribers.get_subscriber(session, email).status
    except LookupError:
        return ""  # service.reactivate raises the one-line error


def reactivate_matching(
    session: Session, actor: Actor, *, reasons_: Sequence[str] = (),
    since: dt.datetime | None = None, domain: str | None = None, note: str = "",
    by: str = "", dry_run: bool = False,
) -> list[str]:
    """Undo a mass event: everyone now bounced by a record matching the filter (reason,
    received since, recipient domain) becomes active; with dry_run only counted. The
    addresses. The audit row keeps the filter and the count, not the addresses."""
    require(actor, "bounces.manage")
    chosen = service.reactivate_matching(session, reasons_=reasons_, since=since,
                                         domain=domain, note=note, actor=by, dry_run=dry_run)
    if not dry_run:
        audit.record(session, actor, "subscribers.reactivate", None, None, {
            "reasons": list(reasons_), "since": since, "domain": domain or "",
            "note": note.strip(), "reactivated": len(chosen)})
    return chosen


def purge(session: Session, settings: Settings, actor: Actor) -> int:
    """Forget raw bounce messages past their retention (the records stay); how many."""
    require(actor, "bounces.manage")
    count = service.purge_with_settings(session, settings)
    audit.record(session, actor, "bounces.purge", None, None, {"purged": count})
    return count
