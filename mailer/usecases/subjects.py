"""Subjects as people received them, for the CLI's tables and status lines.

A meeting campaign's subject is a template (each reader gets their language); showing it raw
prints `{% if language == 'en' %}...`. This renders each subject for a sample recipient with
the campaign's event, two queries for any number of campaigns.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.orm import Session

from mailer.campaigns import queries as campaign_queries
from mailer.compose.subject import display_subject
from mailer.events import queries as event_queries
from mailer.events.service import event_context
from mailer.settings import Settings

__all__ = ["shown_subjects"]


def shown_subjects(
    session: Session, settings: Settings, campaign_ids: Collection[int], *, limit: int = 0
) -> dict[int, str]:
    """campaign id -> its subject as received ("nl / en" when the two differ)."""
    campaigns = campaign_queries.campaigns_by_ids(session, campaign_ids)
    events = {
        e.id: event_context(e)
        for e in event_queries.events_by_ids(
            session, {c.event_id for c in campaigns if c.event_id is not None}
        )
    }
    return {
        c.id: display_subject(
            settings, c.subject, campaign_id=c.id, kind=c.kind, meta=c.meta or {},
            event=events.get(c.event_id) if c.event_id is not None else None, limit=limit,
        )
        for c in campaigns
    }
