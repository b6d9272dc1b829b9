"""Campaign use cases: create, preview, test, approve, schedule, send, pause, resume, cancel,
list, status, and the console's drafts.

The `*_campaign(app, ...)` functions are what the CLI calls, each one transaction on
`app.sessions`; `actor` names who asked (an `Actor`, or the OS login name at the command line).
They are thin: the session-level functions below hold the rules, shared with the console. Each
change checks the actor's permission, applies the four-eyes rule (console.require_approval) and
writes the audit trail in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailer import audit
from mailer.audit import Actor
from mailer.bounces.service import campaign_bounce_summary
from mailer.campaigns import approval, queries
from mailer.campaigns import service as campaigns
from mailer.campaigns.models import Campaign
from mailer.compose import CampaignRenderer, Recipient, Rendered, sample_recipient
from mailer.compose.headers import check_address
from mailer.database.connect import session_scope
from mailer.delivery.sender import Message
from mailer.errors import CampaignError, TemplateError
from mailer.kernel.clock import utcnow
from mailer.kernel.tokens import Signer
from mailer.settings import Settings
from mailer.usecases.subjects import shown_subjects
from mailer.usecases.users import require
from subscribers import service as subscribers
from subscribers.errors import SubscriberNotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mailer.app import App

__all__ = [
    "Created",
    "Preview",
    "create_campaign",
    "preview_campaign",
    "send_test",
    "schedule_campaign",
    "start_campaign",
    "PauseReport",
    "pause_campaign",
    "resume_campaign",
    "cancel_campaign",
    "list_campaigns",
    "campaign_status",
    "approve_campaign",
    "as_actor",
    "overview", "detail", "create", "approve", "schedule", "send", "pause", "resume", "cancel",
    "record_test", "snapshot", "create_draft", "edit_draft", "audience_count", "preview",
    "audience_choices", "start_due", "duplicate", "request_approval", "approval_asked",
    "overview_page", "PAGE_SIZE",
    "draft_fields",
]

log = logging.getLogger("mailer.campaigns")


def as_actor(actor: Actor | str) -> Actor:
    """An Actor; a plain name is the OS user at the command line (`os:NAME`)."""
    if isinstance(actor, Actor):
        return actor
    return Actor(name=actor if actor.startswith("os:") else f"os:{actor}", origin="cli")


@dataclass(frozen=True)
class Created:
    campaign_id: int
    recipients: int  # the audience as it is now (the snapshot is taken at the start)


@dataclass(frozen=True)
class Preview:
    rendered: Rendered
    message: bytes | None  # the whole message as it would be sent, when asked for


def create_campaign(
    app: App,
    *,
    content_file: Path,
    audience: campaigns.AudienceSpec,
    subject: str | None = None,
    template: str = "newsletter",
    actor: Actor | str,
) -> Created:
    """A draft campaign from a content file; a template or content that does not render is
    refused now, not halfway through a send."""
    with session_scope(app.sessions) as session:
        campaign = create(session, app.settings, app.signer, as_actor(actor),
                          content_file=content_file, subject=subject, template=template,
                          audience=audience)
        count = queries.count_audience(session, campaign.audience)
    log.info("%s created campaign %d", actor, campaign.id)
    return Created(campaign.id, count)


def _renderer_and_recipient(
    app: App, session: Session, campaign_id: int, email: str | None,
    renderer: CampaignRenderer | None = None,
) -> tuple[CampaignRenderer, Recipient]:
    if renderer is None:
        campaign = campaigns.get_campaign(session, campaign_id)
        renderer = app.renderer_factory(session, campaign, app.settings, app.signer)
    if email is None:
        return renderer, sample_recipient(app.settings)
    sub = subscribers.get_subscriber(session, email)
    return renderer, Recipient(
        subscriber_id=sub.id, public_id=sub.public_id, email=sub.email, name=sub.name,
        organisation=sub.organisation, job_title=sub.job_title, region=sub.region,
        language=sub.language,
        attributes=dict(sub.attributes or {}),
    )


def preview_campaign(app: App, campaign_id: int, *, email: str | None = None,
                     whole_message: bool = False) -> Preview:
    """The campaign rendered for one subscriber (or a made-up sample recipient)."""
    with session_scope(app.sessions) as session:
        renderer, recipient = _renderer_and_recipient(app, session, campaign_id, email)
        rendered = renderer.render(recipient)
        message = renderer.message_bytes(recipient) if whole_message else None
    return Preview(rendered, message)


def send_test(app: App, campaign_id: int, *, to: Sequence[str], email: str | None = None,
              actor: Actor | str) -> list[tuple[str, str, str]]:
    """Send a copy of the campaign to each address in `to`, through the one sender;
    [(address, personalised as, why the relay deferred it or "" when sent)]. A deferred copy
    stays queued and the service retries it; DeliveryError when the relay refused a copy or
    could not be reached.

    Each copy is personalised as a real subscriber (the address's own record, or `email`), so
    its links are signed and open that person's pages. Every address is checked before
    anything is sent: a bad one, or one that is no subscriber, is a CampaignError.
    """
    addresses = []
    for address in to:
        try:
            addresses.append(check_address(address.strip()))
        except TemplateError:
            raise CampaignError(f"--to: not a usable e-mail address: {address[:100]!r}") from None
    messages = []
    with session_scope(app.sessions) as session:
        record_test(session, as_actor(actor), campaign_id, addresses)
        campaign = campaigns.get_campaign(session, campaign_id)
        renderer = app.renderer_factory(session, campaign, app.settings, app.signer)
        for address in addresses:
            who = email or address
            try:
                subscribers.get_subscriber(session, who)
            except SubscriberNotFoundError:
                raise CampaignError(
                    f"{who}: not a subscriber, so the test's links would open no page; "
                    "give --subscriber EMAIL to personalise the test as a subscriber"
                ) from None
            _same, recipient = _renderer_and_recipient(app, session, campaign_id, who,
                                                       renderer=renderer)
            messages.append((address, who, renderer.envelope_sender(recipient),
                             renderer.message_bytes(recipient)))
    results = []
    for address, who, sender, data in messages:
        outcome, reason = app.sender.send_now("test", Message(sender, address, data))
        log.info("%s sent a test of campaign %d to %s: %s", actor, campaign_id, address, outcome)
        results.append((address, who, reason if outcome == "deferred" else ""))
    return results


def approve_campaign(app: App, campaign_id: int, *, version: int | None = None,
                     actor: Actor | str) -> int:
    """Approve the campaign's current version (four-eyes); the version approved."""
    with session_scope(app.sessions) as session:
        approved = approve(session, as_actor(actor), campaign_id, version=version).version
    log.info("%s approved campaign %d version %d", actor, campaign_id, approved)
    return approved


def schedule_campaign(app: App, campaign_id: int, at: str, *, actor: Actor | str
                      ) -> dt.datetime:
    """Schedule at a local time ("2027-04-10 09:00", settings' time zone); the moment, UTC."""
    when = campaigns.parse_when(at, app.settings)
    with session_scope(app.sessions) as session:
        schedule(session, app.settings, as_actor(actor), campaign_id, when)
    log.info("%s scheduled campaign %d for %s", actor, campaign_id, when.isoformat())
    return when


def start_campaign(app: App, campaign_id: int, *, actor: Actor | str) -> int:
    """Start now: the audience snapshot is taken; the service delivers. How many recipients."""
    with session_scope(app.sessions) as session:
        count = send(session, app.settings, as_actor(actor), campaign_id)
    log.info("%s started campaign %d (%d recipients)", actor, campaign_id, count)
    return count


@dataclass(frozen=True)
class PauseReport:
    on_wire: int  # messages a worker was already sending: they went out
    still_held: int  # deliveries still `sending` when the wait ended (a worker not answering)


def pause_campaign(app: App, campaign_id: int, *, actor: Actor | str) -> PauseReport:
    """Pause: no worker claims more, running workers hand back what they queued (within a
    quarter of a second). Waits, at most smtp.timeout_seconds + 5 s, for the messages on the
    wire, and says how many there were."""
    with session_scope(app.sessions) as session:
        pause(session, as_actor(actor), campaign_id)
        _flying, sent_before = campaigns.in_flight(session, campaign_id)
    log.info("%s paused campaign %d", actor, campaign_id)
    deadline = time.monotonic() + app.settings.smtp.timeout_seconds + 5
    while True:
        with session_scope(app.sessions) as session:
            flying, sent = campaigns.in_flight(session, campaign_id)
        if not flying or time.monotonic() > deadline:
            return PauseReport(on_wire=sent - sent_before, still_held=flying)
        time.sleep(0.1)  # the workers write their hand-back; the database has no notification


def resume_campaign(app: App, campaign_id: int, *, actor: Actor | str) -> str:
    """Resume a paused campaign; its status now (scheduled or running)."""
    with session_scope(app.sessions) as session:
        status = resume(session, app.settings, as_actor(actor), campaign_id)
    log.info("%s resumed campaign %d", actor, campaign_id)
    return status


def cancel_campaign(app: App, campaign_id: int, *, actor: Actor | str) -> int:
    """Cancel; how many unsent messages were dropped."""
    with session_scope(app.sessions) as session:
        dropped = cancel(session, as_actor(actor), campaign_id)
    log.info("%s cancelled campaign %d (%d unsent dropped)", actor, campaign_id, dropped)
    return dropped


def list_campaigns(
    app: App, statuses: Sequence[str] = ()
) -> list[tuple[Campaign, dict[str, int], str]]:
    """The campaigns (of these statuses), each with its delivery counts by status and its
    subject as people received it (a meeting mail's subject is a per-person template)."""
    with session_scope(app.sessions) as session:
        rows = queries.campaigns_list(session, statuses)
        counts = queries.delivery_counts_many(session, [c.id for c in rows])
        shown = shown_subjects(session, app.settings, [c.id for c in rows])
    return [(c, counts.get(c.id, {}), shown.get(c.id, c.subject)) for c in rows]


def campaign_status(app: App, campaign_id: int) -> dict[str, Any]:
    """Progress, rate, ETA and the bounce figures with the configured alert thresholds."""
    with session_scope(app.sessions) as session:
        info = campaigns.campaign_status(session, campaign_id, now=utcnow())
        # The subject as people received it, not its template source.
        info["subject"] = shown_subjects(session, app.settings, [campaign_id]).get(
            campaign_id, info["subject"])
        info["bounces"] = campaign_bounce_summary(session, campaign_id,
                                                  settings=app.settings.bounces)
    return info


# -- the rules, one session at a time (the console calls these directly) ------------------

def snapshot(c: Campaign) -> dict[str, Any]:
    """What the audit trail keeps of a campaign before and after a change."""
    return {"status": c.status, "subject": c.subject, "scheduled_at": c.scheduled_at,
            "version": c.version, "edited_by": c.edited_by, "approved_by": c.approved_by,
            "approved_version": c.approved_version, "audience": c.audience}


def approval_asked(c: Campaign) -> str:
    """Who asked for approval of the current version ("" when nobody did, or it is approved,
    or it was edited since)."""
    if approval.is_approved(c) or c.approval_requested_version != c.version:
        return ""
    return c.approval_requested_by


def _row(c: Campaign, counts: dict[str, int]) -> dict[str, Any]:
    return {"id": c.id, "kind": c.kind, "subject": c.subject, "status": c.status,
            "asked_by": approval_asked(c),
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


#: Campaigns per page of the console's list.
PAGE_SIZE = 50


def overview_page(session: Session, settings: Settings, actor: Actor, *, page: int = 1,
                  per_page: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of the campaign list, newest first, with its delivery figures: a fixed
    number of queries (the page, the total, two grouped counts, the subjects) whatever the
    number of campaigns and deliveries; finished campaigns' counts come from the figures
    kept when they finished (campaigns.delivery_figures)."""
    require(actor, "campaigns.read")
    total = queries.count_campaigns(session)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = queries.campaigns_page(session, limit=per_page, offset=(page - 1) * per_page)
    counts = campaigns.delivery_figures(session, rows)
    shown = shown_subjects(session, settings, [c.id for c in rows])
    items = []
    for c in rows:
        row = _row(c, counts.get(c.id, {}))
        found = counts.get(c.id, {})
        row["subject"] = shown.get(c.id, c.subject)
        row["sent"] = found.get("sent", 0) + found.get("bounced", 0)  # the relay took them
        items.append(row)
    return {"campaigns": items, "page": page, "pages": pages, "total": total}


def detail(session: Session, actor: Actor, campaign_id: int,
           now: dt.datetime | None = None, *, sent_last_minute: int | None = None
           ) -> dict[str, Any]:
    """One campaign's status as `mailer campaigns status` shows it, and who did what."""
    require(actor, "campaigns.read")
    info = campaigns.campaign_status(session, campaign_id, now=now or utcnow(),
                                     sent_last_minute=sent_last_minute)
    c = campaigns.get_campaign(session, campaign_id)
    info.update(version=c.version, author=c.created_by, editor=approval.last_editor(c),
                approver=c.approved_by if approval.is_approved(c) else "",
                approved=approval.is_approved(c), preheader=c.preheader, body=c.content,
                asked_by=approval_asked(c), asked_at=c.approval_requested_at)
    return info


def draft_fields(session: Session, actor: Actor, campaign_id: int) -> dict[str, Any]:
    """What the editor shows of a campaign: its text and audience, without the delivery and
    audience counts of `detail` (the editor asks for its live count by itself)."""
    require(actor, "campaigns.read")
    c = campaigns.get_campaign(session, campaign_id)
    return {"id": c.id, "status": c.status, "subject": c.subject, "preheader": c.preheader,
            "body": c.content, "audience": c.audience}


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


def audience_choices(session: Session, settings: Settings, actor: Actor) -> dict[str, Any]:
    """What the audience builder offers: the lists (slug, title), regions and languages."""
    require(actor, "campaigns.read")
    from subscribers import queries as subscriber_queries
    from subscribers.models import LANGUAGES

    # The lists only (not list_summaries: counting every list's members is not needed here).
    lists = [(ml.slug, ml.title) for ml in subscriber_queries.all_lists(session)]
    return {"lists": lists, "regions": list(settings.regions), "languages": list(LANGUAGES)}


def duplicate(session: Session, settings: Settings, signer: Signer, actor: Actor,
              campaign_id: int) -> Campaign:
    """A new draft with the campaign's subject, text, template and audience: version 1, made
    by the actor, not approved (an approval is of one version of one campaign)."""
    require(actor, "campaigns.edit")
    from mailer.compose.model import Content

    original = campaigns.get_campaign(session, campaign_id)
    if original.kind != "newsletter":
        raise CampaignError(f"campaign {campaign_id} is a meeting's {original.kind}; only a "
                            "newsletter can be duplicated")
    content = Content(original.subject, original.preheader, original.content,
                      original.content_format, dict(original.meta or {}))
    campaign = campaigns.create_from_content(
        session, settings, signer, content=content, template=original.template,
        audience=campaigns.AudienceSpec.from_audience(original.audience),
        source=f"campaign {campaign_id}", name=f"campaign {campaign_id}")
    approval.created(campaign, actor.name)
    session.flush()
    audit.record(session, actor, "campaign.duplicate", ("campaign", campaign.id), None,
                 snapshot(campaign) | {"copied_from": campaign_id})
    return campaign


def request_approval(session: Session, settings: Settings, actor: Actor, campaign_id: int,
                     *, sender: Any = None) -> tuple[Campaign, list[int]]:
    """Ask for approval of the current version: recorded on the campaign and in the audit
    trail; with `sender`, a short mail to every active approver and admin but the asker is
    queued in the outbox (sent by the caller or by `mailer run`). Changes no four-eyes rule:
    an approver still approves, and not their own edit. (campaign, outbox ids)."""
    require(actor, "campaigns.edit")
    campaign = campaigns.get_campaign(session, campaign_id)
    if campaign.status not in approval.APPROVABLE:
        raise CampaignError(f"campaign {campaign_id} is {campaign.status}; approval is asked "
                            "for a draft")
    if approval.is_approved(campaign):
        raise CampaignError(f"campaign {campaign_id} version {campaign.version} is approved "
                            "already")
    before = snapshot(campaign)
    campaign.approval_requested_by = actor.name
    campaign.approval_requested_version = campaign.version
    campaign.approval_requested_at = utcnow()
    session.flush()
    recipients = _approvers(session, exclude=actor.name)
    _audited(session, actor, "campaign.request_approval", campaign_id, before,
             {"asked_version": campaign.version, "notified": recipients})
    ids: list[int] = []
    if sender is not None and recipients:
        ids = sender.queue(session, "approval-request",
                           [_approval_mail(settings, campaign, actor.name, to)
                            for to in recipients])
    return campaign, ids


def _approvers(session: Session, *, exclude: str) -> list[str]:
    from mailer.accounts import queries as account_queries

    return [u.email for u in account_queries.users(session)
            if u.role in ("approver", "admin") and u.status == "active" and u.email != exclude]


def _approval_mail(settings: Settings, campaign: Campaign, asker: str, to: str) -> Message:
    """A plain note to an approver: which campaign, who asks, where to look. No personal
    data of subscribers; the link is the console's own page."""
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    url = f"{settings.console.base_url.rstrip('/')}/campaigns/{campaign.id}"
    msg = EmailMessage()
    msg["From"] = settings.sender.address
    msg["To"] = to
    msg["Subject"] = f"Goedkeuring gevraagd: {campaign.subject}"[:200]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.sender.list_id_domain or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"{asker} vraagt u versie {campaign.version} van de nieuwsbrief "
        f"\"{campaign.subject}\" goed te keuren.\n\n{url}\n\n"
        f"{asker} asks you to approve version {campaign.version} of the newsletter "
        f"\"{campaign.subject}\".\n")
    return Message(settings.sender.address, to, msg.as_bytes())


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
