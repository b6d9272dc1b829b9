"""Campaign operations: create, schedule, start (audience snapshot), pause, resume, cancel, status.

The campaign's row is the truth about its state; every transition is a conditional UPDATE, so a
campaign starts once however many schedulers, workers or commands race for it. Functions take a
session and the settings; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailer.campaigns import queries
from mailer.campaigns.models import Campaign
from mailer.errors import CampaignError, NotFoundError, TemplateError
from mailer.kernel import localtime
from mailer.kernel.tokens import Signer
from mailer.settings import Settings
from subscribers import service as subscribers
from subscribers.controls import strip_controls
from subscribers.models import LANGUAGES, utcnow

if TYPE_CHECKING:
    from mailer.compose import CampaignRenderer, RendererFactory

__all__ = [
    "AudienceSpec",
    "parse_attributes",
    "clean_audience",
    "create_campaign",
    "create_from_content",
    "update_draft",
    "get_campaign",
    "parse_when",
    "schedule",
    "start",
    "start_due",
    "pause",
    "resume",
    "cancel",
    "campaign_status",
    "delivery_figures",
    "sent_over_time",
    "series_step",
]

@dataclass(frozen=True)
class AudienceSpec:
    """Who gets a campaign: active subscribers of `lists`, narrowed by the other filters.

    As everywhere in the CLI: the values of one filter are alternatives (Noord or Oost), the
    filters together all apply (Noord or Oost, and Dutch). `attributes` are KEY=VALUE pairs;
    pairs with the same key are alternatives, different keys all apply.
    """

    lists: Sequence[str]
    regions: Sequence[str] = field(default=())
    organisations: Sequence[str] = field(default=())
    languages: Sequence[str] = field(default=())
    job_titles: Sequence[str] = field(default=())
    attributes: Sequence[tuple[str, str]] = field(default=())

    @classmethod
    def from_audience(cls, audience: dict[str, Any]) -> AudienceSpec:
        """The spec of a stored audience (a campaign's, or a saved segment's)."""
        pairs = [(key, str(value)) for key, values in (audience.get("attributes") or {}).items()
                 for value in values]
        return cls(lists=list(audience.get("lists") or ()),
                   regions=list(audience.get("regions") or ()),
                   organisations=list(audience.get("organisations") or ()),
                   languages=list(audience.get("languages") or ()),
                   job_titles=list(audience.get("job_titles") or ()),
                   attributes=pairs)


def parse_attributes(pairs: Sequence[str], option: str = "--attr") -> list[tuple[str, str]]:
    """KEY=VALUE texts as pairs; a text without "=" or without a key is refused."""
    parsed = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CampaignError(f"{option} {pair[:100]!r}: use KEY=VALUE")
        parsed.append((key.strip(), value.strip()))
    return parsed


def _default_renderer(
    session: Session, campaign: Campaign, settings: Settings, signer: Signer
) -> CampaignRenderer:
    from mailer.compose import build_renderer

    return build_renderer(session, campaign, settings, signer)


def clean_audience(session: Session, settings: Settings, spec: AudienceSpec) -> dict[str, Any]:
    if not spec.lists:
        raise CampaignError("a campaign needs at least one list (--list SLUG)")
    lists = [ml.slug for ml in subscribers.get_lists(session, spec.lists)]
    regions = []
    for value in spec.regions:
        region = settings.canonical_region(value)
        if region is None:
            raise CampaignError(
                f"unknown region {value!r}; configured regions: {', '.join(settings.regions)}"
            )
        regions.append(region)
    languages = []
    for value in spec.languages:
        if value.strip().lower() not in LANGUAGES:
            raise CampaignError(f"unknown language {value!r}; use one of {', '.join(LANGUAGES)}")
        languages.append(value.strip().lower())
    organisations = [o.strip() for o in spec.organisations if o.strip()]
    audience: dict[str, Any] = {"lists": lists, "regions": regions,
                                "organisations": organisations, "languages": languages}
    # Only when used, so audiences stored before these filters existed compare equal.
    job_titles = [j.strip()[:200] for j in spec.job_titles if j.strip()]
    if job_titles:
        audience["job_titles"] = job_titles
    attributes: dict[str, list[str]] = {}
    for key, value in spec.attributes:
        if not key.strip():
            raise CampaignError(f"attribute {key!r}={value!r}: the key is empty")
        values = attributes.setdefault(key.strip()[:100], [])
        if value.strip() not in values:
            values.append(value.strip()[:200])
    if attributes:
        audience["attributes"] = attributes
    return audience


def create_campaign(
    session: Session,
    settings: Settings,
    signer: Signer,
    *,
    content_file: Path,
    audience: AudienceSpec,
    subject: str | None = None,
    template: str = "newsletter",
) -> Campaign:
    """A new draft newsletter from a content file; a template or content that does not render
    is refused now. (Meeting mail makes its campaigns in events.announce.)"""
    from mailer.compose import load_content

    content = load_content(content_file, subject=subject)
    return create_from_content(
        session, settings, signer, content=content, audience=audience, subject=subject,
        template=template, source=f"{content_file} (body after the front matter)",
        name=str(content_file),
    )


def _check_subject(subject: str, name: str) -> str:
    if not subject:
        raise CampaignError(
            f"{name}: no subject (give --subject or `subject:` in the front matter)")
    if "\n" in subject or "\r" in subject:
        raise CampaignError("the subject must be one line")
    # Other control characters go (staff paste them; they reach terminals and inboxes).
    return strip_controls(subject).strip()


def _preheader(text: str) -> str:
    return strip_controls(text).strip()


def _trial_render(session: Session, campaign: Campaign, settings: Settings, signer: Signer,
                  renderer_factory: RendererFactory, source: str) -> None:
    """Render once now, so a broken template stops here and not halfway through a send."""
    try:
        renderer_factory(session, campaign, settings, signer)
    except TemplateError as exc:
        # The renderer names stored content "campaign N content"; point at what the person
        # is editing instead (the file, or the console's text field).
        message = str(exc).replace(f"campaign {campaign.id} content", source)
        raise TemplateError(message) from None
    except Exception as exc:  # a broken template must stop here, not mid-send
        raise TemplateError(f"{source}: {exc}") from None


def create_from_content(
    session: Session,
    settings: Settings,
    signer: Signer,
    *,
    content: Any,
    audience: AudienceSpec,
    subject: str | None = None,
    template: str = "newsletter",
    kind: str = "newsletter",
    event_id: int | None = None,
    renderer_factory: RendererFactory = _default_renderer,
    source: str = "the text",
    name: str = "the newsletter",
) -> Campaign:
    """A new draft from content already read (a file, or the console's editor)."""
    final_subject = _check_subject((subject or content.subject or "").strip(), name)
    campaign = Campaign(
        kind=kind,
        subject=final_subject,
        preheader=_preheader(content.preheader or ""),
        template=template,
        content=strip_controls(content.body, multiline=True),
        content_format=content.format,
        meta=dict(content.meta),
        audience=clean_audience(session, settings, audience),
        event_id=event_id,
        status="draft",
        pause_reason="",
    )
    session.add(campaign)
    session.flush()
    _trial_render(session, campaign, settings, signer, renderer_factory, source)
    return campaign


def update_draft(
    session: Session,
    settings: Settings,
    signer: Signer,
    campaign_id: int,
    *,
    subject: str,
    preheader: str,
    body: str,
    audience: AudienceSpec,
    renderer_factory: RendererFactory = _default_renderer,
    source: str = "the text",
) -> Campaign:
    """Change a draft's subject, preheader, body and audience; refused once it is scheduled."""
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "draft":
        raise CampaignError(f"campaign {campaign_id} is {campaign.status}; only a draft can be "
                            "edited")
    if not body.strip():
        raise CampaignError(f"{source}: the body is empty")
    campaign.subject = _check_subject(subject.strip(), source)
    campaign.preheader = _preheader(preheader)
    campaign.content = strip_controls(body, multiline=True)
    campaign.audience = clean_audience(session, settings, audience)
    session.flush()
    _trial_render(session, campaign, settings, signer, renderer_factory, source)
    return campaign


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    found = queries.campaign_by_id(session, campaign_id)
    if found is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    return found


def parse_when(value: str, settings: Settings) -> dt.datetime:
    """"YYYY-MM-DD HH:MM" in the configured time zone, or with an explicit offset; UTC out.

    The hour that does not exist (clocks forward) is refused; the hour that happens twice
    (clocks back) is refused too, naming the two offsets, since either guess may be wrong.
    """
    try:
        return localtime.parse_local(value, settings.timezone)
    except ValueError as exc:
        raise CampaignError(f"--at {exc}") from None


def schedule(
    session: Session, campaign_id: int, at: dt.datetime, *, now: dt.datetime | None = None
) -> Campaign:
    """Schedule (or reschedule) a draft, scheduled or missed campaign; refuses a past time."""
    now = now or utcnow()
    if at <= now:
        raise CampaignError(f"{at.isoformat()} is in the past; pick a later time")
    campaign = get_campaign(session, campaign_id)
    if not queries.set_campaign_status(
        session, campaign_id, "scheduled", from_statuses=("draft", "scheduled", "missed"),
        scheduled_at=at,
    ):
        raise CampaignError(f"campaign {campaign_id} is {campaign.status}; it cannot be scheduled")
    session.refresh(campaign)
    return campaign


def start(session: Session, campaign_id: int, *, now: dt.datetime | None = None) -> int:
    """Start sending now: snapshot the audience into deliveries; the number of recipients."""
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id)
    if not queries.set_campaign_status(
        session, campaign_id, "running", from_statuses=("draft", "scheduled", "missed"),
        started_at=now, pause_reason="",
    ):
        raise CampaignError(f"campaign {campaign_id} is {campaign.status}; it cannot be started")
    count = queries.snapshot_audience(session, campaign_id, campaign.audience)
    queries.finish_done_campaigns(session, now)
    session.expire(campaign)
    return count


@dataclass(frozen=True)
class DueResult:
    started: list[tuple[int, int]]
    missed: list[tuple[int, dt.datetime]]


def start_due(session: Session, now: dt.datetime, grace: dt.timedelta) -> DueResult:
    """Start every scheduled campaign whose time has come; mark `missed` those late beyond grace.

    A send whose time passed while the service was down is started if at most `grace` late;
    otherwise it is marked missed (and reported), never silently dropped nor sent twice.
    """
    started: list[tuple[int, int]] = []
    missed: list[tuple[int, dt.datetime]] = []
    for campaign_id, at in queries.due_campaigns(session, now):
        if now - at > grace:
            if queries.set_campaign_status(
                session, campaign_id, "missed", from_statuses=("scheduled",),
                pause_reason=f"scheduled for {at.isoformat()}, beyond the grace period",
            ):
                missed.append((campaign_id, at))
            continue
        if queries.set_campaign_status(
            session, campaign_id, "running", from_statuses=("scheduled",), started_at=now
        ):
            campaign = get_campaign(session, campaign_id)
            started.append(
                (campaign_id, queries.snapshot_audience(session, campaign_id, campaign.audience))
            )
    if started:
        queries.finish_done_campaigns(session, now)
    return DueResult(started, missed)


def pause(session: Session, campaign_id: int, reason: str = "paused by an administrator") -> None:
    campaign = get_campaign(session, campaign_id)
    if not queries.set_campaign_status(
        session, campaign_id, "paused", from_statuses=("running", "scheduled"),
        pause_reason=strip_controls(reason, multiline=True).strip(),
        resume_at=None,  # an administrator's pause is never lifted by the engine
    ):
        raise CampaignError(f"campaign {campaign_id} is {campaign.status}; only a running or "
                            "scheduled campaign can be paused")


def in_flight(session: Session, campaign_id: int) -> tuple[int, int]:
    """(deliveries `sending`, deliveries sent) of a campaign: what a pause waits for."""
    counts = queries.delivery_counts(session, campaign_id)
    return counts.get("sending", 0), counts.get("sent", 0)


def resume(session: Session, campaign_id: int, *, now: dt.datetime | None = None) -> str:
    """Resume a paused campaign: sending again if it had started or its time has passed,
    else scheduled again. Returns the new status."""
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "paused":
        raise CampaignError(
            f"campaign {campaign_id} is {campaign.status}; only a paused one can be resumed"
        )
    campaign.resume_at = None
    if campaign.started_at is None and campaign.scheduled_at and campaign.scheduled_at > now:
        queries.set_campaign_status(
            session, campaign_id, "scheduled", from_statuses=("paused",), pause_reason=""
        )
        return "scheduled"
    queries.set_campaign_status(
        session, campaign_id, "running", from_statuses=("paused",), pause_reason="",
        started_at=campaign.started_at or now,
    )
    # Idempotent: adds only recipients not snapshotted yet (none, if it had started).
    if campaign.started_at is None:
        queries.snapshot_audience(session, campaign_id, campaign.audience)
    return "running"


def cancel(session: Session, campaign_id: int) -> int:
    """Cancel: nothing more is sent; returns how many queued deliveries were dropped."""
    campaign = get_campaign(session, campaign_id)
    if not queries.set_campaign_status(
        session, campaign_id, "cancelled",
        from_statuses=("draft", "scheduled", "running", "paused", "missed"),
    ):
        raise CampaignError(f"campaign {campaign_id} is {campaign.status}; it cannot be cancelled")
    return queries.release_campaign(session, campaign_id, "skipped", "campaign cancelled")


def delivery_figures(session: Session, campaigns: Sequence[Campaign]
                     ) -> dict[int, dict[str, int]]:
    """Delivery counts by status of many campaigns, in at most two grouped queries.

    A finished campaign's counts were kept when it finished (`final_counts`); since then only
    sent -> bounced can happen, so its bounced deliveries are counted live (an index range
    each) and the rest is the kept figure. Every other campaign is counted live.
    """
    kept = {c.id: dict((c.final_counts or {}).get("counts") or {}) for c in campaigns
            if c.status == "finished" and c.final_counts}
    found = queries.delivery_counts_many(session, [c.id for c in campaigns if c.id not in kept])
    bounced = queries.delivery_counts_many(session, list(kept), statuses=("bounced",))
    for campaign_id, counts in kept.items():
        went_out = counts.get("sent", 0) + counts.get("bounced", 0)
        counts["bounced"] = bounced.get(campaign_id, {}).get("bounced", 0)
        counts["sent"] = went_out - counts["bounced"]
        found[campaign_id] = {k: v for k, v in counts.items() if v}
    return found


def series_step(campaign: Campaign, now: dt.datetime) -> int:
    """Seconds per bar of the campaign's chart (minutes, hours or days, by its length)."""
    return queries.series_step(campaign.started_at, campaign.finished_at, now)


def sent_over_time(session: Session, campaign: Campaign, now: dt.datetime
                   ) -> tuple[int, dict[int, int], int | None]:
    """(seconds per bar, {bar: messages accepted}, sent in the last minute or None); a bar is
    a whole number of steps since 1970. A finished campaign's bars come from what it kept when
    it finished (and its rate is its average: None)."""
    kept = (campaign.final_counts or {}).get("series") if campaign.status == "finished" else None
    if kept:  # when each message went out does not change after the end
        return int(kept["step"]), {int(b): int(n) for b, n in kept["sent"]}, None
    step = series_step(campaign, now)
    live = campaign.status in ("running", "paused")
    bars, recent = queries.sent_series_since(session, campaign.id, step,
                                             now - dt.timedelta(seconds=60) if live else None)
    return step, dict(bars), recent if live else None


def campaign_status(
    session: Session, campaign_id: int, *, now: dt.datetime | None = None,
    sent_last_minute: int | None = None,
) -> dict[str, Any]:
    """Counts per delivery status, recent rate and ETA, and the pause reason, as plain data.
    `sent_last_minute`: already counted by the caller (sent_over_time), not counted again."""
    now = now or utcnow()
    campaign = get_campaign(session, campaign_id)
    counts = delivery_figures(session, [campaign]).get(campaign_id, {})
    recipients = sum(counts.values())
    if recipients == 0 and campaign.status in ("draft", "scheduled", "missed"):
        recipients = queries.count_audience(session, campaign.audience)
    if campaign.status not in ("running", "paused"):  # a finished one's rate is its average
        sent_last_minute = 0
    elif sent_last_minute is None:
        sent_last_minute = queries.sent_since(session, campaign_id,
                                              now - dt.timedelta(seconds=60))
    rate = sent_last_minute / 60.0
    if campaign.started_at and counts.get("sent"):
        elapsed = max(((campaign.finished_at or now) - campaign.started_at).total_seconds(), 1.0)
        if campaign.status == "finished" or rate == 0:
            rate = counts["sent"] / elapsed
    remaining = sum(counts.get(s, 0) for s in ("queued", "sending", "deferred"))
    eta: dt.datetime | None = None
    if campaign.status == "running" and remaining and rate > 0:
        eta = now + dt.timedelta(seconds=remaining / rate)
    bounced = counts.get("bounced", 0)
    return {
        "id": campaign.id,
        "subject": campaign.subject,
        "kind": campaign.kind,
        "status": campaign.status,
        "pause_reason": campaign.pause_reason,
        # A relay outage: since when, and when the engine tries again by itself.
        "outage_since": campaign.outage_since,
        "resume_at": campaign.resume_at,
        "audience": campaign.audience,
        "scheduled_at": campaign.scheduled_at,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
        "recipients": recipients,
        "queued": counts.get("queued", 0),
        "sending": counts.get("sending", 0),
        "sent": counts.get("sent", 0),
        "deferred": counts.get("deferred", 0),
        "failed": counts.get("failed", 0),
        "bounced": bounced,
        "skipped": counts.get("skipped", 0),
        "rate_per_second": round(rate, 2),
        "eta": eta,
    }
