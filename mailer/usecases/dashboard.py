"""What the console's dashboard, calendar and live status show: plain data from a few grouped
queries, read by the console (and usable by a CLI command).

No figure here comes from tracking: nothing counts opens or clicks. "Sent" is what the relay
accepted, bounces and complaints are the reports that came back, unsubscribes and sign-ups are
the consent history.
"""

from __future__ import annotations

import calendar as calendars
import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from mailer.accounts.roles import allowed
from mailer.audit import Actor
from mailer.bounces import queries as bounce_queries
from mailer.bounces.service import campaign_bounce_summary
from mailer.campaigns import queries as campaign_queries
from mailer.campaigns import service as campaigns
from mailer.campaigns.models import Campaign
from mailer.events import queries as event_queries
from mailer.kernel.clock import utcnow
from mailer.settings import Settings
from mailer.usecases.campaigns import detail
from mailer.usecases.subjects import shown_subjects
from mailer.usecases.users import require
from subscribers import service as subscribers

__all__ = ["dashboard", "month", "live_status", "FIGURE_DAYS", "SPIKE_DAYS"]

#: The period of the dashboard's figures.
FIGURE_DAYS = 30
#: How long after it finished a campaign's bounce rate is still an alert.
SPIKE_DAYS = 7
#: Upcoming sends shown.
NEXT = 5


def _went_out(counts: dict[str, int]) -> int:
    return counts.get("sent", 0) + counts.get("bounced", 0) + counts.get("failed", 0)


def _sent_since(session: Session, touched: Sequence[Campaign], counts: dict[int, dict[str, int]],
                since: dt.datetime) -> int:
    """Messages accepted since `since`: a finished campaign that started inside the period
    counts whole, from its kept figures; the others (still sending, or started before the
    period) are counted from their deliveries, in one query."""
    whole = [c for c in touched if c.status == "finished" and c.final_counts
             and c.started_at is not None and c.started_at >= since]
    total = sum(counts.get(c.id, {}).get("sent", 0) + counts.get(c.id, {}).get("bounced", 0)
                for c in whole)
    rest = [c.id for c in touched if c not in whole]
    return total + campaign_queries.sent_in_period(session, rest, since)


def _alerts(settings: Settings, active: Sequence[Campaign], touched: Sequence[Campaign],
            counts: dict[int, dict[str, int]], bounces: dict[int, dict[str, int]],
            pauses: Sequence[Any], subjects: dict[int, str], now: dt.datetime
            ) -> list[dict[str, Any]]:
    """What needs someone: paused (and why), missed, a relay outage, a bounce or complaint
    rate above its limit, a receiving domain paused by the brake."""
    alerts: list[dict[str, Any]] = []
    for c in active:
        row = {"campaign_id": c.id, "subject": subjects.get(c.id, c.subject)}
        if c.status == "paused" and c.outage_since is not None:
            alerts.append({**row, "kind": "outage", "since": c.outage_since,
                           "resume_at": c.resume_at, "reason": c.pause_reason})
        elif c.status == "paused":
            alerts.append({**row, "kind": "paused", "reason": c.pause_reason})
        elif c.status == "missed":
            alerts.append({**row, "kind": "missed", "at": c.scheduled_at})
    limits = settings.bounces
    recent = now - dt.timedelta(days=SPIKE_DAYS)
    for c in touched:
        if c.finished_at is not None and c.finished_at < recent:
            continue
        went_out = _went_out(counts.get(c.id, {}))
        found = bounces.get(c.id, {})
        if not went_out:
            continue
        hard, complaints = found.get("hard", 0) / went_out, found.get("complaint", 0) / went_out
        if hard > limits.hard_rate_alert or complaints > limits.complaint_rate_alert:
            alerts.append({"kind": "bounces", "campaign_id": c.id,
                           "subject": subjects.get(c.id, c.subject), "hard_rate": hard,
                           "complaint_rate": complaints, "hard_limit": limits.hard_rate_alert,
                           "complaint_limit": limits.complaint_rate_alert})
    for pause in pauses:
        alerts.append({"kind": "domain", "domain": pause.domain, "reason": pause.reason,
                       "since": pause.paused_at})
    return alerts


def dashboard(session: Session, settings: Settings, actor: Actor,
              now: dt.datetime | None = None) -> dict[str, Any]:
    """Next sends, what is sending (with its progress), alerts, and the last 30 days' figures.

    A fixed number of queries whatever the number of campaigns or people: the campaigns of
    interest (three), their delivery counts (two, grouped), their bounces (one, grouped),
    messages sent in the period (one), bounce kinds (one), consent figures (one), domain
    pauses (one), subjects (two).
    """
    require(actor, "campaigns.read")
    now = now or utcnow()
    since = now - dt.timedelta(days=FIGURE_DAYS)
    upcoming = campaign_queries.next_scheduled(session, NEXT)
    active = campaign_queries.campaigns_list(session, ("running", "paused", "missed"))
    touched = campaign_queries.campaigns_sending_since(session, since)
    wanted = {c.id: c for c in [*active, *touched]}
    counts = campaigns.delivery_figures(session, list(wanted.values()))
    bounces = bounce_queries.kind_counts_of(session, [c.id for c in touched])
    subjects = shown_subjects(session, settings, [*wanted, *(c.id for c in upcoming)])
    pauses = list(campaign_queries.active_pauses(session).values())
    kinds = bounce_queries.kind_counts_since(session, since)
    consent = subscribers.consent_figures(session, since)

    def progress(c: Campaign) -> dict[str, Any]:
        found = counts.get(c.id, {})
        return {"id": c.id, "subject": subjects.get(c.id, c.subject), "status": c.status,
                "sent": found.get("sent", 0) + found.get("bounced", 0),
                "recipients": sum(found.values()), "pause_reason": c.pause_reason,
                "started_at": c.started_at}

    return {
        "next": [{"id": c.id, "subject": subjects.get(c.id, c.subject), "kind": c.kind,
                  "at": c.scheduled_at} for c in upcoming],
        "running": [progress(c) for c in active if c.status in ("running", "paused")],
        "alerts": _alerts(settings, active, touched, counts, bounces, pauses, subjects, now),
        "figures": {
            "days": FIGURE_DAYS,
            "sent": _sent_since(session, touched, counts, since),
            "bounced": kinds.get("hard", 0) + kinds.get("soft", 0),
            "hard": kinds.get("hard", 0),
            "soft": kinds.get("soft", 0),
            "complaints": kinds.get("complaint", 0),
            "unsubscribes": consent["unsubscribes"],
            "signups": consent["signups"],
        },
    }


# -- the calendar -----------------------------------------------------------------------------

def _month_bounds(year: int, month_no: int) -> tuple[dt.date, dt.date]:
    first = dt.date(year, month_no, 1)
    after = dt.date(year + (month_no == 12), month_no % 12 + 1, 1)
    return first, after


def month(session: Session, settings: Settings, actor: Actor, year: int, month_no: int
          ) -> dict[str, Any]:
    """A month of scheduled (and sent) campaigns and meetings, in weeks from Monday, in the
    settings' time zone; meetings only for those who may read them."""
    require(actor, "campaigns.read")
    if not (1 <= month_no <= 12 and 2000 <= year <= 2200):
        raise ValueError("no such month")
    tz = settings.tz
    first, after = _month_bounds(year, month_no)
    start = dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(after, dt.time(), tz).astimezone(dt.UTC)
    found = campaign_queries.campaigns_between(session, start, end)
    subjects = shown_subjects(session, settings, [c.id for c in found])
    items: dict[dt.date, list[dict[str, Any]]] = {}
    for c in found:
        at = (c.scheduled_at or c.started_at or start).astimezone(tz)
        items.setdefault(at.date(), []).append({
            "type": "campaign", "id": c.id, "title": subjects.get(c.id, c.subject),
            "kind": c.kind, "status": c.status, "at": at})
    if (actor.user_id is None and not actor.role) or allowed(actor.role, "events.read"):
        for e in event_queries.events_between(session, start, end):
            at = e.starts_at.astimezone(tz)
            items.setdefault(at.date(), []).append({
                "type": "meeting", "id": e.id, "title": e.title, "status": e.status,
                "region": e.region, "at": at})
    for day in items.values():
        day.sort(key=lambda item: item["at"])
    today = utcnow().astimezone(tz).date()
    weeks = [[{"date": d, "in_month": d.month == month_no, "today": d == today,
               "entries": items.get(d, []) if d.month == month_no else []} for d in week]
             for week in calendars.Calendar(firstweekday=0).monthdatescalendar(year, month_no)]
    before = first - dt.timedelta(days=1)
    return {"year": year, "month": month_no, "weeks": weeks, "timezone": settings.timezone,
            "previous": (before.year, before.month), "next": (after.year, after.month),
            "count": sum(len(v) for v in items.values())}


# -- the live status -------------------------------------------------------------------------

#: Bars a chart shows at most.
MAX_BARS = 240


def _rebin(found: dict[int, Any], step: int, coarser: int) -> dict[int, Any]:
    """Bars of `step` seconds added up into bars of `coarser` seconds (values: counts, or
    {kind: count})."""
    out: dict[int, Any] = {}
    for bar, value in found.items():
        into = bar * step // coarser
        if isinstance(value, dict):
            merged = out.setdefault(into, {})
            for kind, n in value.items():
                merged[kind] = merged.get(kind, 0) + n
        else:
            out[into] = out.get(into, 0) + value
    return out

def live_status(session: Session, settings: Settings, actor: Actor, campaign_id: int,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """A campaign's status (as `detail`), with its bounce figures and alerts, the people who
    unsubscribed through its link, and its deliveries and bounces over time."""
    now = now or utcnow()
    require(actor, "campaigns.read")
    campaign = campaigns.get_campaign(session, campaign_id)
    # The chart's pass over the deliveries also counts the last minute (the rate).
    step, sent, recent = campaigns.sent_over_time(session, campaign, now)
    info = detail(session, actor, campaign_id, now, sent_last_minute=recent)
    info["subject"] = shown_subjects(session, settings, [campaign_id]).get(
        campaign_id, info["subject"])
    info["bounces"] = campaign_bounce_summary(
        session, campaign_id, settings=settings.bounces,
        sent_known=info["sent"] + info["bounced"] + info["failed"])
    info["unsubscribed"] = (subscribers.unsubscribed_from_campaign(
        session, campaign_id, campaign.started_at) if campaign.started_at else 0)
    bounced: dict[int, dict[str, int]] = {}
    for bucket, kind, n in bounce_queries.received_series(session, campaign_id, step):
        bounced.setdefault(bucket, {})[kind] = n
    # Both charts over the same bars, empty ones filled in, so they line up; bounces that come
    # in days after the send make the bars coarser (hours, days), never cut the send off.
    found = [*sent, *bounced]
    for coarser in (3600, 86400):
        if not found or (max(found) - min(found)) < MAX_BARS or step >= coarser:
            continue
        sent, bounced = _rebin(sent, step, coarser), _rebin(bounced, step, coarser)
        step, found = coarser, [*sent, *bounced]
    bars = list(range(min(found), max(found) + 1))[-MAX_BARS:] if found else []

    def at(bar: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(bar * step, dt.UTC)

    info["series"] = {"step": step, "sent": [(at(b), sent.get(b, 0)) for b in bars],
                      "bounces": [(at(b), bounced.get(b, {})) for b in bars]}
    return info
