"""Saved segments: an audience (lists, regions, organisations, languages, job titles,
attributes) under a name, saved in the console's audience builder and used by
`mailer campaigns create --segment NAME`; and the builder's sample of who is in an audience.

A segment holds filters, not people: a campaign made from it copies the filters, and the
people are found when it starts, like any audience.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailer import audit
from mailer.audit import Actor
from mailer.campaigns import queries
from mailer.campaigns.models import Segment
from mailer.campaigns.service import AudienceSpec, clean_audience
from mailer.database.connect import session_scope
from mailer.errors import CampaignError, NotFoundError
from mailer.settings import Settings
from mailer.usecases.users import require

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mailer.app import App

__all__ = ["save_segment", "segments", "segment_spec", "delete_segment", "audience_sample",
           "list_segments", "segment_audience", "remove_segment", "SAMPLE_SIZE"]

SAMPLE_SIZE = 10


def _name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise CampaignError("give the segment a name")
    if len(name) > 100:
        raise CampaignError("a segment name is at most 100 characters")
    return name


def save_segment(session: Session, settings: Settings, actor: Actor, name: str,
                 audience: AudienceSpec) -> Segment:
    """Save an audience under a name (a segment of that name is replaced); audited."""
    require(actor, "campaigns.edit")
    name = _name(name)
    cleaned = clean_audience(session, settings, audience)
    found = queries.segment_by_name(session, name)
    before = None
    if found is None:
        found = Segment(name=name, audience=cleaned, created_by=actor.name,
                        updated_by=actor.name)
        session.add(found)
    else:
        before = {"name": found.name, "audience": found.audience}
        found.audience = cleaned
        found.updated_by = actor.name
    session.flush()
    audit.record(session, actor, "segment.save", ("segment", found.id), before,
                 {"name": found.name, "audience": cleaned})
    return found


def delete_segment(session: Session, actor: Actor, name: str) -> None:
    require(actor, "campaigns.edit")
    found = queries.segment_by_name(session, name)
    if found is None:
        raise NotFoundError(f"no segment {name!r}; `mailer campaigns segments ls` lists them")
    audit.record(session, actor, "segment.delete", ("segment", found.id),
                 {"name": found.name, "audience": found.audience}, None)
    session.delete(found)
    session.flush()


def segments(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Every segment by name, with its audience and its number of people now."""
    require(actor, "campaigns.read")
    return [{"id": s.id, "name": s.name, "audience": dict(s.audience),
             "count": queries.count_audience(session, s.audience),
             "updated_by": s.updated_by, "updated_at": s.updated_at}
            for s in queries.segments(session)]


def segment_spec(session: Session, name: str) -> AudienceSpec:
    """The audience saved under `name` (case-insensitive), or NotFoundError."""
    found = queries.segment_by_name(session, name.strip())
    if found is None:
        raise NotFoundError(f"no segment {name!r}; `mailer campaigns segments ls` lists them")
    return AudienceSpec.from_audience(found.audience)


def list_segments(app: App) -> list[dict[str, Any]]:
    """The CLI's `campaigns segments ls`."""
    with session_scope(app.sessions) as session:
        return segments(session, Actor(name="os:cli", origin="cli"))


def segment_audience(app: App, name: str) -> AudienceSpec:
    """`campaigns create --segment NAME`: the audience saved under that name."""
    with session_scope(app.sessions) as session:
        return segment_spec(session, name)


def remove_segment(app: App, name: str, *, actor: Actor) -> None:
    """`campaigns segments rm NAME`."""
    with session_scope(app.sessions) as session:
        delete_segment(session, actor, name)


def audience_sample(session: Session, settings: Settings, actor: Actor,
                    audience: AudienceSpec, limit: int = SAMPLE_SIZE) -> list[tuple[str, str]]:
    """(name, organisation) of the first people in an audience: who the builder picks.
    Names are personal data, so this needs campaigns.edit, not just campaigns.read."""
    require(actor, "campaigns.edit")
    return queries.audience_sample(session, clean_audience(session, settings, audience), limit)
