"""Campaigns as use cases: create, approve, schedule, send, pause, resume, cancel, test, and
the reads the console shows. Each change checks the actor's permission, applies the four-eyes
rule (console.require_approval) and writes the audit trail in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mailer import audit
from mailer.audit import Actor
from mailer.campaigns import approval, queries
from mailer.campaigns import service as campaigns
from mailer.campaigns.models import Campaign
from mailer.kernel.tokens import Signer
from mailer.settings import Settings
from mailer.usecases.users import require
from subscribers.models import utcnow

__all__ = ["overview", "detail", "create", "approve", "schedule", "send", "pause", "resume",
           "cancel", "record_test", "snapshot"]


def snapshot(c: Campaign) -> dict[str, Any]:
    """What the audit trail keeps of a campaign before and after a change."""
    return {"status": c.status, "subject": c.subject, "scheduled_at": c.scheduled_at,
            "version": c.version, "edited_by": c.edited_by, "approved_by": c.approved_by,
            "approved_version": c.approved_version, "audience": c.audience}


def _row(c: Campaign, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": c.id, "kind": c.kind, "subject": c.subject, "status": c.status,
            "scheduled_at": c.scheduled_at, "started_at": c.started_at,
            "finished_at": c.finished_at, "sent": counts.get("sent", 0),
            "recipients": sum(counts.values()), "author": c.created_by,
            "editor": c.edited_by, "approver": c.approved_by if approval.is_approved(c) else "",
            "version": c.version}


def overview(session: Session, actor: Actor, *, statuses: tuple[str, ...] = ()
             ) -> list[dict[str, Any]]:
    """Every campaign, newest first, with its delivery figures (two queries in all)."""
    require(actor, "campaigns.read")
    rows = queries.campaigns_list(session, statuses)
    counts = queries.delivery_counts_many(session, [c.id for c in rows])
    return [_row(c, counts.get(c.id, {})) for c in rows]


def detail(session: Session, actor: Actor, campaign_id: int,
           now: dt.datetime | None = None) -> dict[str, Any]:
    """One campaign's status as `mailer campaigns status` shows it, and who did what."""
    require(actor, "campaigns.read")
    info = campaigns.campaign_status(session, campaign_id, now=now or utcnow())
    c = campaigns.get_campaign(session, campaign_id)
    info.update(version=c.version, author=c.created_by, editor=approval.last_editor(c),
                approver=c.approved_by if approval.is_approved(c) else "",
                approved=approval.is_approved(c), preheader=c.preheader)
    return info


def _audited(session: Session, actor: Actor, action: str, campaign_id: int,
             before: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> Campaign:
    campaign = campaigns.get_campaign(session, campaign_id)
    session.refresh(campaign)
    after = snapshot(campaign) | (extra or {})
    audit.record(session, actor, action, ("campaign", campaign_id), before, after)
    return campaign


def create(session: Session, settings: Settings, signer: Signer, actor: Actor, *,
           content_file: Path, audience: campaigns.AudienceSpec, subject: str | None = None,
           template: str = "newsletter") -> Campaign:
    require(actor, "campaigns.edit")
    campaign = campaigns.create_campaign(session, settings, signer, content_file=content_file,
                                         audience=audience, subject=subject, template=template)
    approval.created(campaign, actor.name)
    session.flush()
    audit.record(session, actor, "campaign.create", ("campaign", campaign.id), None,
                 snapshot(campaign))
    return campaign


def approve(session: Session, actor: Actor, campaign_id: int, *, version: int | None = None
            ) -> Campaign:
    """Approve the current version (or refuse: one's own edit, or a version since changed)."""
    require(actor, "campaigns.approve")
    campaign = campaigns.get_campaign(session, campaign_id)
    before = snapshot(campaign)
    approval.approve(campaign, actor.name, version=version, now=utcnow())
    session.flush()
    return _audited(session, actor, "campaign.approve", campaign_id, before)


def _four_eyes(settings: Settings, campaign: Campaign) -> None:
    if settings.console.require_approval:
        approval.require_approved(campaign)


def schedule(session: Session, settings: Settings, actor: Actor, campaign_id: int,
             at: dt.datetime) -> Campaign:
    require(actor, "campaigns.schedule")
    campaign = campaigns.get_campaign(session, campaign_id)
    before = snapshot(campaign)
    campaigns.schedule(session, campaign_id, at)  # its own checks (time, state) come first
    _four_eyes(settings, campaign)  # refusing rolls the caller's transaction back
    return _audited(session, actor, "campaign.schedule", campaign_id, before)


def send(session: Session, settings: Settings, actor: Actor, campaign_id: int) -> int:
    """Start sending now; the number of recipients."""
    require(actor, "campaigns.schedule")
    campaign = campaigns.get_campaign(session, campaign_id)
    before = snapshot(campaign)
    _four_eyes(settings, campaign)
    count = campaigns.start(session, campaign_id)
    _audited(session, actor, "campaign.send", campaign_id, before, {"recipients": count})
    return count


def pause(session: Session, actor: Actor, campaign_id: int) -> None:
    require(actor, "campaigns.schedule")
    before = snapshot(campaigns.get_campaign(session, campaign_id))
    campaigns.pause(session, campaign_id, reason=f"paused by {actor.name}")
    _audited(session, actor, "campaign.pause", campaign_id, before)


def resume(session: Session, settings: Settings, actor: Actor, campaign_id: int) -> str:
    require(actor, "campaigns.schedule")
    campaign = campaigns.get_campaign(session, campaign_id)
    before = snapshot(campaign)
    _four_eyes(settings, campaign)
    status = campaigns.resume(session, campaign_id)
    _audited(session, actor, "campaign.resume", campaign_id, before)
    return status


def cancel(session: Session, actor: Actor, campaign_id: int) -> int:
    require(actor, "campaigns.schedule")
    before = snapshot(campaigns.get_campaign(session, campaign_id))
    dropped = campaigns.cancel(session, campaign_id)
    _audited(session, actor, "campaign.cancel", campaign_id, before, {"dropped": dropped})
    return dropped


def record_test(session: Session, actor: Actor, campaign_id: int, to: list[str]) -> None:
    """Test sends change nothing, but the trail shows who sent one and where to."""
    require(actor, "campaigns.test")
    campaigns.get_campaign(session, campaign_id)
    audit.record(session, actor, "campaign.test", ("campaign", campaign_id), None, {"to": to})
