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
                approved=approval.is_approved(c), preheader=c.preheader, body=c.content)
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


# -- the console's editor ----------------------------------------------------------------------

EDITOR_SOURCE = "the text"


def _content(subject: str, preheader: str, body: str) -> Any:
    from mailer.compose.model import Content

    return Content(subject.strip(), preheader.strip(), body, "markdown", {})


def create_draft(session: Session, settings: Settings, signer: Signer, actor: Actor, *,
                 subject: str, preheader: str, body: str,
                 audience: campaigns.AudienceSpec) -> Campaign:
    """A new draft written in the console (Markdown); the same checks as `campaigns create`."""
    require(actor, "campaigns.edit")
    if not body.strip():
        from mailer.errors import CampaignError

        raise CampaignError(f"{EDITOR_SOURCE}: the body is empty")
    campaign = campaigns.create_from_content(
        session, settings, signer, content=_content(subject, preheader, body),
        audience=audience, source=EDITOR_SOURCE, name="the newsletter")
    approval.created(campaign, actor.name)
    session.flush()
    audit.record(session, actor, "campaign.create", ("campaign", campaign.id), None,
                 snapshot(campaign))
    return campaign


def edit_draft(session: Session, settings: Settings, signer: Signer, actor: Actor,
               campaign_id: int, *, subject: str, preheader: str, body: str,
               audience: campaigns.AudienceSpec) -> Campaign:
    """Change a draft: a new version, which withdraws any approval."""
    require(actor, "campaigns.edit")
    before = snapshot(campaigns.get_campaign(session, campaign_id))
    campaign = campaigns.update_draft(session, settings, signer, campaign_id, subject=subject,
                                      preheader=preheader, body=body, audience=audience,
                                      source=EDITOR_SOURCE)
    approval.edited(campaign, actor.name)
    session.flush()
    audit.record(session, actor, "campaign.edit", ("campaign", campaign_id), before,
                 snapshot(campaign))
    return campaign


def audience_count(session: Session, settings: Settings, actor: Actor,
                   audience: campaigns.AudienceSpec) -> int:
    """How many people an audience has now (the live count of the audience builder)."""
    require(actor, "campaigns.read")
    from mailer.campaigns.service import clean_audience

    return queries.count_audience(session, clean_audience(session, settings, audience))


def preview(session: Session, settings: Settings, signer: Signer, actor: Actor, *,
            subject: str, preheader: str, body: str, language: str,
            campaign_id: int | None = None) -> Any:
    """Render unsaved text through the real renderer, for a sample Dutch or English
    recipient; nothing is stored (the caller's transaction is rolled back)."""
    require(actor, "campaigns.read")
    from mailer.compose import build_renderer, sample_recipient

    campaign = Campaign(id=campaign_id or 0, kind="newsletter", subject=subject.strip() or "-",
                        preheader=preheader.strip(), template="newsletter", content=body,
                        content_format="markdown", meta={}, audience={"lists": []},
                        status="draft", pause_reason="")
    try:
        renderer = build_renderer(session, campaign, settings, signer)
    except Exception as exc:
        from mailer.errors import TemplateError

        message = str(exc).replace(f"campaign {campaign.id} content", EDITOR_SOURCE)
        raise TemplateError(message) from None
    return renderer.render(sample_recipient(settings, language=language))


def test_message(session: Session, settings: Settings, signer: Signer, actor: Actor,
                 campaign_id: int, to: list[str]) -> tuple[str, bytes]:
    """The envelope sender and bytes of a test message (sent by the caller); audited."""
    from mailer.compose import build_renderer, sample_recipient

    require(actor, "campaigns.test")
    campaign = campaigns.get_campaign(session, campaign_id)
    renderer = build_renderer(session, campaign, settings, signer)
    recipient = sample_recipient(settings)
    record_test(session, actor, campaign_id, to)
    return renderer.envelope_sender(recipient), renderer.message_bytes(recipient)


def audience_choices(session: Session, settings: Settings, actor: Actor) -> dict[str, Any]:
    """What the audience builder offers: the lists (slug, title), regions and languages."""
    require(actor, "campaigns.read")
    from subscribers import queries as subscriber_queries
    from subscribers.models import LANGUAGES

    lists = [(ml.slug, ml.title) for ml, *_counts in subscriber_queries.list_summaries(session)]
    return {"lists": lists, "regions": list(settings.regions), "languages": list(LANGUAGES)}


#: The service itself, when it starts a scheduled campaign at its time.
SERVICE = Actor(name="service", origin="service")


def start_due(session: Session, now: dt.datetime, grace: dt.timedelta) -> campaigns.DueResult:
    """Start the campaigns whose time has come (mark missed ones), recorded as the service.

    They were approved when scheduled, and a scheduled campaign cannot be edited, so the
    four-eyes rule holds without a second check here.
    """
    due = campaigns.start_due(session, now, grace)
    for campaign_id, count in due.started:
        audit.record(session, SERVICE, "campaign.start", ("campaign", campaign_id), None,
                     {"status": "running", "recipients": count})
    for campaign_id, at in due.missed:
        audit.record(session, SERVICE, "campaign.missed", ("campaign", campaign_id), None,
                     {"status": "missed", "scheduled_at": at})
    return due
