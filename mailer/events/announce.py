"""Meeting mail that goes through the delivery engine: invitations, updates, cancellations.

Each is an ordinary campaign (kind invitation / update / cancellation, `event_id` set), so it
gets the engine's scheduling, rate limits, retries, VERP and bounce handling. An invitation's
audience is a filter (the event's region by default, optionally narrowed to lists); an update
or cancellation goes to a fixed set, everyone invited who has not declined, which is written
into the campaign's deliveries here at once (the engine sends a running campaign's deliveries
and never re-snapshots a started one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from mailer.campaigns import queries as campaign_queries
from mailer.campaigns import service as campaigns
from mailer.campaigns.models import Campaign
from mailer.errors import EventError, TemplateError
from mailer.events import queries
from mailer.events.models import Event
from mailer.kernel.tokens import Signer
from mailer.settings import Settings
from subscribers import service as subscribers

__all__ = [
    "TEMPLATES",
    "invitation_campaign",
    "invitation_draft",
    "announcement_campaign",
    "check_renders",
    "stop_pending_campaigns",
]

#: Campaign kind -> mail template (templates/mail/<name>.<nl|en>.<html|txt>).
TEMPLATES = {
    "invitation": "invitation",
    "update": "event-update",
    "cancellation": "event-cancellation",
}

# Subjects are templates too (rendered per recipient), so each person reads their language.
_SUBJECTS = {
    "invitation": (
        "{% if language == 'en' %}Invitation: {{ event.title }}, {{ event.day_en }}"
        "{% else %}Uitnodiging: {{ event.title }}, {{ event.day }}{% endif %}"
    ),
    "update": (
        "{% if language == 'en' %}Changed: {{ event.title }}, {{ event.day_en }}"
        "{% else %}Gewijzigd: {{ event.title }}, {{ event.day }}{% endif %}"
    ),
    "cancellation": (
        "{% if language == 'en' %}Cancelled: {{ event.title }}, {{ event.day_en }}"
        "{% else %}Afgelast: {{ event.title }}, {{ event.day }}{% endif %}"
    ),
}


def _new_campaign(
    settings: Settings, event: Event, kind: str, audience: dict[str, Any], now: dt.datetime,
    subject: str | None,
) -> Campaign:
    return Campaign(
        kind=kind,
        subject=subject or _SUBJECTS[kind],
        preheader="",
        template=TEMPLATES[kind],
        content="",
        content_format="markdown",
        # The calendar file's ORGANIZER, kept with the campaign (composition reads it back).
        meta={"organizer": {"name": settings.sender.name, "email": settings.sender.address}},
        audience=audience,
        event_id=event.id,
        status="draft",
        pause_reason="",
        created_at=now,
        updated_at=now,
    )


def invitation_draft(settings: Settings, event: Event, *, subject: str | None = None,
                     now: dt.datetime | None = None) -> Campaign:
    """An invitation campaign that is not stored: what a preview and a test copy render."""
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    audience = {"lists": [], "regions": [event.region], "organisations": [], "languages": []}
    campaign = _new_campaign(settings, event, "invitation", audience, stamp, subject)
    campaign.id = 0  # no campaign yet: "view online" of a preview or test opens nothing
    return campaign


def check_renders(session: Session, campaign: Campaign, settings: Settings, signer: Signer) -> None:
    """Build the campaign's renderer (a trial render): a broken template stops here."""
    from mailer.compose import build_renderer
    from mailer.events.service import invitation_extras

    try:
        build_renderer(session, campaign, settings, signer, extras=invitation_extras)
    except TemplateError:
        raise
    except Exception as exc:  # any failure to render must stop before anything is sent
        raise TemplateError(f"template {campaign.template}: {exc}") from None


def invitation_campaign(
    session: Session,
    settings: Settings,
    signer: Signer,
    event_id: int,
    *,
    lists: Sequence[str] = (),
    regions: Sequence[str] = (),
    at: dt.datetime | None = None,
    subject: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Campaign, int | None]:
    """Invite people to a meeting: (campaign, recipients if started now, else None).

    Default audience: the active subscribers of the event's region; `regions` replaces the
    region, `lists` narrows to active subscribers of those lists. With `at` the campaign is
    scheduled, otherwise it starts at once (its deliveries are queued for the engine).
    """
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    event = queries.event_by_id(session, event_id)
    if event is None:
        from mailer.errors import NotFoundError

        raise NotFoundError(f"event {event_id}: no such event")
    if event.status == "cancelled":
        raise EventError(f"event {event_id}: cancelled meetings cannot be invited to")
    if event.starts_at <= stamp:
        raise EventError(f"event {event_id}: the meeting has started already")
    wanted_regions = []
    for value in regions or (event.region,):
        region = settings.canonical_region(value)
        if region is None:
            raise EventError(
                f"region: unknown region {value!r} (known: {', '.join(settings.regions)})"
            )
        wanted_regions.append(region)
    slugs = [ml.slug for ml in subscribers.get_lists(session, lists)] if lists else []
    audience = {"lists": slugs, "regions": wanted_regions, "organisations": [], "languages": []}
    campaign = _new_campaign(settings, event, "invitation", audience, stamp, subject)
    session.add(campaign)
    session.flush()
    check_renders(session, campaign, settings, signer)
    if at is not None:
        campaigns.schedule(session, campaign.id, at, now=stamp)
        return campaign, None
    count = campaigns.start(session, campaign.id, now=stamp)
    return campaign, count


def announcement_campaign(
    session: Session, settings: Settings, signer: Signer, event: Event, kind: str,
    now: dt.datetime,
) -> int:
    """Start an update or cancellation campaign to everyone invited who has not declined.

    The recipients are written as deliveries at once, so a later answer does not change who
    hears of this change. A campaign with nobody to tell is finished straight away.
    """
    if kind not in ("update", "cancellation"):
        raise ValueError(f"not an announcement: {kind!r}")
    # No filter audience: the recipients are the deliveries written below.
    audience = {"lists": [], "regions": [], "organisations": [], "languages": [],
                "event": {"id": event.id, "recipients": "invited, not declined"}}
    campaign = _new_campaign(settings, event, kind, audience, now, None)
    session.add(campaign)
    session.flush()
    check_renders(session, campaign, settings, signer)
    queries.snapshot_not_declined(session, campaign.id, event.id)
    campaign_queries.set_campaign_status(
        session, campaign.id, "running", from_statuses=("draft",), started_at=now
    )
    campaign_queries.finish_done_campaigns(session, now)
    session.expire(campaign)
    return campaign.id


def stop_pending_campaigns(session: Session, event_id: int) -> list[int]:
    """Cancel the event's campaigns not yet done (a cancelled meeting is not invited to)."""
    stopped = []
    for campaign in queries.event_campaigns(session, event_id):  # a meeting has a handful
        if campaign.kind != "cancellation" and campaign.status in (
            "draft", "scheduled", "running", "paused", "missed"
        ):
            campaigns.cancel(session, campaign.id)
            stopped.append(campaign.id)
    return stopped
