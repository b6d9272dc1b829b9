"""Meeting use cases: create, edit, cancel, invite, record an answer, send what is due.

What the CLI and the staff console do with meetings, each one transaction on `app.sessions`.
`actor` names who asked; every change is logged with it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailer.campaigns.service import parse_when
from mailer.database.connect import session_scope
from mailer.events import service
from mailer.events.announce import invitation_campaign
from mailer.events.models import Event
from mailer.usecases.meeting_mail import SendReport, run_due_work
from subscribers import service as subscribers

if TYPE_CHECKING:
    from mailer.app import App

__all__ = [
    "Invited",
    "create_event",
    "edit_event",
    "cancel_event",
    "invite",
    "record_rsvp",
    "send_due_mail",
    "calendar_replies",
]

log = logging.getLogger("mailer.events")


@dataclass(frozen=True)
class Invited:
    campaign_id: int
    recipients: int | None  # queued now; None for a scheduled one (its snapshot comes later)
    at: dt.datetime | None  # when it is scheduled for, or None if it started now


def create_event(app: App, fields: service.EventFields, *, actor: str) -> Event:
    with session_scope(app.sessions) as session:
        event = service.create_event(session, app.settings, fields)
    log.info("%s created event %d", actor, event.id)
    return event


def edit_event(app: App, event_id: int, changes: Mapping[str, Any], *, announce: bool = True,
               actor: str) -> service.Change:
    """Change a meeting; unless told not to, the invitees get an update (see events.service)."""
    with session_scope(app.sessions) as session:
        change = service.edit_event(session, app.settings, event_id, changes, announce=announce,
                                    signer=app.signer)
    if change.changed:
        log.info("%s changed event %d (%s)", actor, event_id, ", ".join(change.changed))
    return change


def cancel_event(app: App, event_id: int, *, actor: str) -> service.Change:
    """Cancel a meeting: everyone invited who has not declined gets a cancellation."""
    with session_scope(app.sessions) as session:
        change = service.cancel_event(session, app.settings, event_id, signer=app.signer)
    log.info("%s cancelled event %d", actor, event_id)
    return change


def invite(
    app: App,
    event_id: int,
    *,
    lists: Sequence[str] = (),
    regions: Sequence[str] = (),
    at: str | None = None,
    subject: str | None = None,
    actor: str,
) -> Invited:
    """An invitation campaign (calendar file, Yes / No / Maybe), now or at a local time."""
    when = parse_when(at, app.settings) if at else None
    with session_scope(app.sessions) as session:
        campaign, count = invitation_campaign(
            session, app.settings, app.signer, event_id, lists=lists, regions=regions,
            at=when, subject=subject,
        )
        campaign_id = campaign.id  # (expired by the start: read it in the transaction)
    log.info("%s invited to event %d (campaign %d)", actor, event_id, campaign_id)
    return Invited(campaign_id, count, when)


def record_rsvp(app: App, event_id: int, email: str, answer: str, *,
                actor: str) -> service.Answer:
    """Record an answer on someone's behalf (given by phone, say); the page's rules apply."""
    with session_scope(app.sessions) as session:
        person = subscribers.get_subscriber(session, email)
        outcome = service.rsvp(session, app.settings, event_id, person.id, answer, source="cli")
    if outcome.changed:
        log.info("%s recorded %s's answer %s for event %d", actor, email, answer, event_id)
    return outcome


def send_due_mail(app: App) -> tuple[int, SendReport]:
    """Queue the reminders that are due and send all owed meeting mail now."""
    return run_due_work(app)


def calendar_replies(app: App, *, review_only: bool = False, limit: int = 50
                     ) -> list[dict[str, object]]:
    """Answers that came from calendars, newest first (only those kept for review, if asked)."""
    from mailer.events.replies import list_replies

    with session_scope(app.sessions) as session:
        return list_replies(session, review_only=review_only, limit=limit)
