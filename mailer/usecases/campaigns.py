"""Campaign use cases: create, preview, test, schedule, send, pause, resume, cancel, list, status.

What the CLI and the staff console do with campaigns, each one transaction on `app.sessions`.
`actor` names who asked (an e-mail address, "cli"); every change is logged with it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailer.bounces.service import campaign_bounce_summary
from mailer.campaigns import queries
from mailer.campaigns import service as campaigns
from mailer.campaigns.models import Campaign
from mailer.compose import CampaignRenderer, Recipient, Rendered, sample_recipient
from mailer.compose.headers import check_address
from mailer.database.connect import session_scope
from mailer.delivery.transport import send_message_sync
from mailer.errors import CampaignError, TemplateError
from mailer.kernel.clock import utcnow
from mailer.usecases.subjects import shown_subjects
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
    "pause_campaign",
    "resume_campaign",
    "cancel_campaign",
    "list_campaigns",
    "campaign_status",
]

log = logging.getLogger("mailer.campaigns")


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
    actor: str,
) -> Created:
    """A draft campaign from a content file; a template or content that does not render is
    refused now, not halfway through a send."""
    with session_scope(app.sessions) as session:
        campaign = campaigns.create_campaign(
            session, app.settings, app.signer, content_file=content_file, subject=subject,
            template=template, audience=audience,
        )
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
        subscriber_id=sub.id, email=sub.email, name=sub.name, organisation=sub.organisation,
        job_title=sub.job_title, region=sub.region, language=sub.language,
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
              actor: str) -> list[tuple[str, str]]:
    """Send a copy of the campaign to each address in `to`; [(address, personalised as)].

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
    for address, _who, sender, data in messages:
        send_message_sync(app.settings, sender, [address], data)
        log.info("%s sent a test of campaign %d to %s", actor, campaign_id, address)
    return [(address, who) for address, who, _s, _d in messages]


def schedule_campaign(app: App, campaign_id: int, at: str, *, actor: str) -> dt.datetime:
    """Schedule at a local time ("2027-04-10 09:00", settings' time zone); the moment, UTC."""
    when = campaigns.parse_when(at, app.settings)
    with session_scope(app.sessions) as session:
        campaigns.schedule(session, campaign_id, when)
    log.info("%s scheduled campaign %d for %s", actor, campaign_id, when.isoformat())
    return when


def start_campaign(app: App, campaign_id: int, *, actor: str) -> int:
    """Start now: the audience snapshot is taken; the service delivers. How many recipients."""
    with session_scope(app.sessions) as session:
        count = campaigns.start(session, campaign_id)
    log.info("%s started campaign %d (%d recipients)", actor, campaign_id, count)
    return count


def pause_campaign(app: App, campaign_id: int, *, actor: str) -> None:
    with session_scope(app.sessions) as session:
        campaigns.pause(session, campaign_id)
    log.info("%s paused campaign %d", actor, campaign_id)


def resume_campaign(app: App, campaign_id: int, *, actor: str) -> str:
    """Resume a paused campaign; its status now (scheduled or running)."""
    with session_scope(app.sessions) as session:
        status = campaigns.resume(session, campaign_id)
    log.info("%s resumed campaign %d", actor, campaign_id)
    return status


def cancel_campaign(app: App, campaign_id: int, *, actor: str) -> int:
    """Cancel; how many unsent messages were dropped."""
    with session_scope(app.sessions) as session:
        dropped = campaigns.cancel(session, campaign_id)
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
