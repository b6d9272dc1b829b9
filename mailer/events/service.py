"""The rules of meetings: plan, change, cancel, answer (capacity, waiting list), remind.

Functions take the session and settings and return what happened. Mail a decision owes a
person (confirmation, a freed seat, a reminder) is queued in `event_mails` in the same
transaction, so it is never lost and never decided twice; the service's event-mail job sends
it. Invitations, updates and cancellations are campaigns of the delivery engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailer.errors import EventError, NotFoundError
from mailer.events import queries
from mailer.events.dates import format_day, format_local, format_moment, format_when
from mailer.events.ical import (
    METHOD_CANCEL,
    METHOD_REQUEST,
    Organizer,
    PersonalCalendar,
    calendar_bytes,
    calendar_template,
)
from mailer.events.models import ANSWERS, ORGANIZER_SEALED, Event, Rsvp
from mailer.events.queries import AnswerCounts
from mailer.kernel.mentions import Needles
from mailer.settings import Settings
from subscribers.controls import strip_controls

if TYPE_CHECKING:
    from mailer.campaigns.models import Campaign
    from mailer.kernel.tokens import Signer

__all__ = [
    "EventFields",
    "Change",
    "Answer",
    "EDITABLE",
    "create_event",
    "get_event",
    "list_events",
    "event_counts",
    "event_campaign_list",
    "AnswerCounts",
    "seats_left",
    "edit_event",
    "cancel_event",
    "rsvp",
    "current_answer",
    "attendee_list",
    "person_answers",
    "forget_subscriber",
    "replies_mentioning",
    "queue_due_reminders",
    "event_context",
    "event_calendar",
    "personal_calendar",
    "reply_address",
    "invitation_extras",
]

#: Fields `edit_event` accepts; a change to one of TIME_AND_PLACE is sent to the invitees.
EDITABLE = (
    "title",
    "region",
    "starts_at",
    "ends_at",
    "venue",
    "address",
    "online_url",
    "capacity",
    "rsvp_deadline",
    "description",
)
TIME_AND_PLACE = frozenset({"starts_at", "ends_at", "venue", "address", "online_url"})

# Owed mail about a person's answer: replaced when the answer changes.
_ANSWER_KINDS = ("confirmation", "waitlist", "seat")
# Owed mail that a cancellation makes pointless.
_CANCELLED_KINDS = ("confirmation", "waitlist", "seat", "reminder", "nudge")


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


@dataclass(frozen=True)
class EventFields:
    """What a meeting is; times are aware (UTC or any zone), shown in settings.timezone."""

    title: str
    region: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    venue: str = ""
    address: str = ""
    online_url: str = ""
    capacity: int | None = None
    rsvp_deadline: dt.datetime | None = None
    description: str = ""


@dataclass(frozen=True)
class Change:
    """The result of an edit or cancellation."""

    event: Event
    changed: tuple[str, ...]
    # Time or place changed (or cancelled): the invitees get an update / cancellation.
    announce: bool
    campaign_id: int | None
    promoted: tuple[int, ...] = ()


@dataclass(frozen=True)
class Answer:
    """What one person's answer did."""

    event: Event
    answer: str
    waiting: bool
    # Place on the waiting list (1 = next to get a seat); 0 if not waiting.
    position: int
    changed: bool
    # Subscribers moved from the waiting list to a seat by this answer.
    promoted: tuple[int, ...]
    seats_left: int | None


def _clean_fields(settings: Settings, values: dict[str, Any]) -> dict[str, Any]:
    """Check a whole set of event values; one-line errors naming the field."""
    title = strip_controls(str(values["title"])).strip()
    if not title:
        raise EventError("title: must not be empty")
    if len(title) > 200:
        raise EventError("title: at most 200 characters")
    values["title"] = title
    region = settings.canonical_region(str(values["region"]))
    if region is None:
        raise EventError(
            f"region: unknown region {values['region']!r} (known: {', '.join(settings.regions)})"
        )
    values["region"] = region
    for key in ("starts_at", "ends_at", "rsvp_deadline"):
        moment = values.get(key)
        if moment is None:
            continue
        if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
            raise EventError(f"{key}: needs a time with a time zone")
        values[key] = moment.astimezone(dt.UTC)
    if values["ends_at"] <= values["starts_at"]:
        raise EventError("ends: the meeting must end after it starts")
    deadline = values.get("rsvp_deadline")
    if deadline is not None and deadline > values["starts_at"]:
        raise EventError("deadline: the RSVP deadline must not be after the start")
    capacity = values.get("capacity")
    if capacity is not None and (isinstance(capacity, bool) or int(capacity) < 1):
        raise EventError(f"capacity: must be 1 or more (or no limit), got {capacity!r}")
    url = strip_controls(str(values.get("online_url") or "")).strip()
    if url and not url.startswith(("https://", "http://")):
        raise EventError(f"online-url: must start with https://, got {url!r}")
    values["online_url"] = url
    values["venue"] = strip_controls(str(values.get("venue") or "")).strip()
    for key in ("address", "description"):  # several lines each: tab and line breaks stay
        values[key] = strip_controls(str(values.get(key) or ""), multiline=True).strip()
    if len(values["venue"]) > 200:
        raise EventError("venue: at most 200 characters")
    return values


def create_event(
    session: Session, settings: Settings, fields: EventFields, *, now: dt.datetime | None = None
) -> Event:
    """Plan a meeting. Its UID is made here, once, and never changes."""
    stamp = _now(now)
    values = _clean_fields(settings, dataclasses.asdict(fields))
    event = Event(
        uid=f"{uuid.uuid4()}@{settings.sender.list_id_domain}",
        timezone=settings.timezone,
        status="active",
        sequence=0,
        organizer_format=ORGANIZER_SEALED,  # for good: see Event.organizer_format
        created_at=stamp,
        updated_at=stamp,
        **values,
    )
    session.add(event)
    session.flush()
    return event


def get_event(session: Session, event_id: int) -> Event:
    event = queries.event_by_id(session, event_id)
    if event is None:
        raise NotFoundError(f"event {event_id}: no such event")
    return event


def list_events(
    session: Session, *, include_past: bool = False, now: dt.datetime | None = None
) -> list[tuple[Event, AnswerCounts]]:
    events = queries.all_events(session, include_past=include_past, now=_now(now))
    counts = queries.answer_counts(session, [e.id for e in events])
    return [(e, counts[e.id]) for e in events]


def event_counts(session: Session, event_id: int) -> AnswerCounts:
    return queries.answer_counts(session, [event_id])[event_id]


def event_campaign_list(session: Session, event_id: int) -> list[Campaign]:
    """The invitation, update and cancellation campaigns of an event, oldest first."""
    return queries.event_campaigns(session, event_id)


def seats_left(event: Event, counts: AnswerCounts) -> int | None:
    """Free seats, or None when the meeting has no capacity limit."""
    if event.capacity is None:
        return None
    return max(0, event.capacity - counts.yes)


def _mail_key(kind: str, now: dt.datetime) -> str:
    return f"{kind}:{now:%Y%m%dT%H%M%S%f}"


def _fill_seats(session: Session, event: Event, now: dt.datetime, source: str) -> list[int]:
    """Give free seats to the waiting list, longest waiting first; their subscriber ids.

    The caller holds the event's lock (queries.lock_event).
    """
    taken = queries.seats_taken(session, event.id)
    free = None if event.capacity is None else event.capacity - taken
    waiting = queries.first_waiting(session, event.id, 1_000_000 if free is None else free)
    for person in waiting:
        person.waiting = False
        person.waiting_since = None
    if not waiting:
        return []
    session.flush()
    queries.add_change(
        session,
        [
            {"rsvp_id": r.id, "answer": "yes", "waiting": False, "source": source, "at": now}
            for r in waiting
        ],
    )
    ids = [r.subscriber_id for r in waiting]
    # "You are on the waiting list" is stale once the seat is theirs.
    queries.drop_pending_mails(session, event.id, ("waitlist",), ids)
    queries.queue_mails(session, event.id, "seat", _mail_key("seat", now), ids, now)
    return ids


def edit_event(
    session: Session,
    settings: Settings,
    event_id: int,
    changes: Mapping[str, Any],
    *,
    now: dt.datetime | None = None,
    announce: bool = True,
    signer: Signer | None = None,
) -> Change:
    """Change a meeting. A change of time or place raises SEQUENCE and, with `announce`, makes
    an update campaign to everyone invited who has not declined; a time change also moves the
    reminders (owed reminders for the old time are dropped; new ones follow the new time).
    More capacity gives seats to the waiting list. An announcement is rendered once as a trial
    with `signer`, the application's (App.signer): it is needed whenever one is made.
    """
    stamp = _now(now)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise EventError(f"cannot edit {', '.join(unknown)} (editable: {', '.join(EDITABLE)})")
    event = queries.lock_event(session, event_id)
    if event is None:
        raise NotFoundError(f"event {event_id}: no such event")
    if event.status == "cancelled":
        raise EventError(f"event {event_id}: cancelled meetings cannot be changed")
    current = {key: getattr(event, key) for key in EDITABLE}
    merged = _clean_fields(settings, {**current, **changes})
    changed = tuple(key for key in EDITABLE if merged[key] != current[key])
    if not changed:
        return Change(event=event, changed=(), announce=False, campaign_id=None)
    for key in changed:
        setattr(event, key, merged[key])
    event.updated_at = stamp
    time_or_place = bool(TIME_AND_PLACE.intersection(changed))
    if time_or_place:
        event.sequence += 1
    if "starts_at" in changed:
        queries.drop_pending_mails(session, event.id, ("reminder", "nudge"))
    session.flush()
    promoted: list[int] = []
    if "capacity" in changed:
        promoted = _fill_seats(session, event, stamp, "capacity")
    campaign_id = None
    if time_or_place and announce:
        campaign_id = _announce(session, settings, signer, event, "update", stamp)
    return Change(
        event=event,
        changed=changed,
        announce=time_or_place,
        campaign_id=campaign_id,
        promoted=tuple(promoted),
    )


def cancel_event(
    session: Session,
    settings: Settings,
    event_id: int,
    *,
    now: dt.datetime | None = None,
    announce: bool = True,
    signer: Signer | None = None,
) -> Change:
    """Cancel a meeting: SEQUENCE goes up, owed mail is dropped, and (with `announce`) a
    cancellation campaign with METHOD:CANCEL and the same UID goes to those not declined
    (rendered as a trial with `signer`, the application's, as in edit_event)."""
    stamp = _now(now)
    event = queries.lock_event(session, event_id)
    if event is None:
        raise NotFoundError(f"event {event_id}: no such event")
    if event.status == "cancelled":
        raise EventError(f"event {event_id}: already cancelled")
    event.status = "cancelled"
    event.sequence += 1
    event.updated_at = stamp
    queries.drop_pending_mails(session, event.id, _CANCELLED_KINDS)
    session.flush()
    from mailer.events.announce import stop_pending_campaigns

    stop_pending_campaigns(session, event.id)
    campaign_id = (
        _announce(session, settings, signer, event, "cancellation", stamp) if announce else None
    )
    return Change(event=event, changed=("status",), announce=True, campaign_id=campaign_id)


def _announce(
    session: Session, settings: Settings, signer: Signer | None, event: Event, kind: str,
    now: dt.datetime,
) -> int:
    """Make the update or cancellation campaign for an event; its id."""
    from mailer.events import announce

    if signer is None:
        # The domain never makes a signer of its own: the composition root's is the one.
        raise ValueError(f"announcing an {kind} needs the application's signer")
    return announce.announcement_campaign(session, settings, signer, event, kind, now)


def _check_open(event: Event, now: dt.datetime) -> None:
    if event.status == "cancelled":
        raise EventError(f"event {event.id}: the meeting is cancelled")
    if now > event.answers_until:
        closed = format_local(event.answers_until, event.timezone)
        raise EventError(f"event {event.id}: answers closed at {closed}")


def rsvp(
    session: Session,
    settings: Settings,
    event_id: int,
    subscriber_id: int,
    answer: str,
    *,
    now: dt.datetime | None = None,
    source: str = "web",
) -> Answer:
    """Record one person's answer, until the deadline.

    Takes the event's row lock first, so answers to one meeting are decided one at a time:
    two people asking for the last seat at once get it once, the other waits. A yes beyond
    the capacity joins the waiting list; a seat given up goes to the first on it.
    """
    if answer not in ANSWERS:
        raise EventError(f"answer: must be one of {', '.join(ANSWERS)}, got {answer!r}")
    event = queries.lock_event(session, event_id)
    if event is None:
        raise NotFoundError(f"event {event_id}: no such event")
    # The time is read under the lock, so the waiting list's order is the order of decisions.
    stamp = _now(now)
    _check_open(event, stamp)
    mine = queries.rsvp_of(session, event_id, subscriber_id)
    if mine is not None and mine.answer == answer:
        counts = event_counts(session, event_id)
        return Answer(
            event=event,
            answer=answer,
            waiting=mine.waiting,
            position=queries.waiting_position(session, mine),
            changed=False,
            promoted=(),
            seats_left=seats_left(event, counts),
        )
    had_seat = mine is not None and mine.answer == "yes" and not mine.waiting
    # Counted before this answer touches the session (autoflush would count it).
    taken = queries.seats_taken(session, event_id)
    if mine is None:
        mine = Rsvp(event_id=event_id, subscriber_id=subscriber_id, answer=answer, created_at=stamp)
        session.add(mine)
    mine.answer = answer
    mine.answered_at = stamp
    mine.waiting = False
    mine.waiting_since = None
    mail_kind = ""
    if answer == "yes":
        if event.capacity is not None and taken >= event.capacity:
            mine.waiting = True
            mine.waiting_since = stamp
            mail_kind = "waitlist"
        else:
            mail_kind = "confirmation"
    session.flush()
    queries.add_change(
        session,
        [{"rsvp_id": mine.id, "answer": answer, "waiting": mine.waiting, "source": source,
          "at": stamp}],
    )
    # Owed mail about the earlier answer is stale now (said yes, then no before it went out).
    queries.drop_pending_mails(session, event_id, _ANSWER_KINDS, [subscriber_id])
    if mail_kind:
        queries.queue_mails(
            session, event_id, mail_kind, _mail_key(mail_kind, stamp), [subscriber_id], stamp
        )
    promoted: list[int] = []
    if had_seat:
        promoted = _fill_seats(session, event, stamp, "waitlist")
    counts = event_counts(session, event_id)
    return Answer(
        event=event,
        answer=answer,
        waiting=mine.waiting,
        position=queries.waiting_position(session, mine),
        changed=True,
        promoted=tuple(promoted),
        seats_left=seats_left(event, counts),
    )


def current_answer(session: Session, event_id: int, subscriber_id: int) -> Rsvp | None:
    return queries.rsvp_of(session, event_id, subscriber_id)


def attendee_list(session: Session, event_id: int) -> list[dict[str, Any]]:
    """The attendee list: name, organisation, region, answer (yes, waiting, maybe, no), when.

    `when` is the local time of the answer; seated people first, then the waiting list in
    order, then maybe and no.
    """
    event = get_event(session, event_id)
    rows = queries.attendee_rows(session, event_id)
    order = {"yes": 0, "waiting": 1, "maybe": 2, "no": 3}
    result = []
    for row in rows:
        answer = "waiting" if row["waiting"] else row["answer"]
        result.append(
            {
                "name": row["name"],
                "organisation": row["organisation"],
                "region": row["region"],
                "answer": answer,
                "when": format_local(row["answered_at"], event.timezone),
                "email": row["email"],
            }
        )
    result.sort(key=lambda r: order[r["answer"]])  # stable: keeps the query's order within
    return result


def person_answers(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """What the meetings hold on a person, for an access request (plain values)."""
    return [
        {
            "event": event.title,
            "starts": format_local(event.starts_at, event.timezone),
            "answer": "waiting" if rsvp.waiting else rsvp.answer,
            "answered_at": rsvp.answered_at,
        }
        for rsvp, event in queries.answers_of_person(session, subscriber_id)
    ]


def replies_mentioning(session: Session, needles: Needles) -> list[dict[str, Any]]:
    """For access requests: the kept calendar replies that mention the person."""
    return [{"reply_id": r.id, "received_at": r.received_at, "from": r.from_header,
             "subject": r.subject, "raw_kept": r.raw is not None}
            for r in queries.replies_mentioning(session, needles)]


def forget_subscriber(
    session: Session, subscriber_id: int, *, email_key: str = "", now: dt.datetime | None = None,
    needles: Needles | None = None,
) -> list[int]:
    """Erasure: remove a person's answers and owed mail; a seat they held goes to the
    waiting list of a meeting still to come. Returns the subscribers who got a seat."""
    stamp = _now(now)
    promoted: list[int] = []
    held = [
        event.id
        for rsvp, event in queries.answers_of_person(session, subscriber_id)
        if rsvp.answer == "yes" and not rsvp.waiting and event.status == "active"
        and event.starts_at > stamp
    ]
    queries.delete_person_rows(session, subscriber_id, email_key, needles)
    session.flush()
    for event_id in held:  # the person's own few meetings
        event = queries.lock_event(session, event_id)
        if event is not None:
            promoted += _fill_seats(session, event, stamp, "erasure")
    return promoted


def queue_due_reminders(
    session: Session, settings: Settings, *, now: dt.datetime | None = None
) -> int:
    """Owe reminders (and the nudge) that are due now; how many mails were queued.

    Run periodically by the service: whatever was missed while it was down is caught up on
    the next round. Per meeting only the nearest due reminder is sent (after a long outage
    people get the one-day reminder, not the one-week one as well), and only to people who
    said yes before that reminder's moment (a later yes just got its confirmation). The key
    names the start time, so a reminder is sent once per person per start time: moving the
    meeting brings new reminders, repeating the round does not.
    """
    stamp = _now(now)
    queued = 0
    hours = sorted(set(settings.events.reminder_hours))
    for event in queries.active_future_events(session, stamp):
        start_key = f"{event.starts_at:%Y%m%dT%H%MZ}"
        due = [h for h in hours if event.starts_at - dt.timedelta(hours=h) <= stamp]
        if due:
            nearest = due[0]
            moment = event.starts_at - dt.timedelta(hours=nearest)
            queued += queries.queue_mails(
                session,
                event.id,
                "reminder",
                f"reminder:{nearest}h:{start_key}",
                queries.yes_ids(event.id, answered_before=moment),
                stamp,
            )
        nudge = settings.events.nudge_hours
        until = event.answers_until
        if nudge > 0 and until - dt.timedelta(hours=nudge) <= stamp < until:
            queued += queries.queue_mails(
                session,
                event.id,
                "nudge",
                f"nudge:{until:%Y%m%dT%H%MZ}",
                queries.non_responder_ids(event.id),
                stamp,
            )
    return queued


# -- what templates and calendar files see -------------------------------------------------------


def event_context(
    event: Event, *, seats: int | None = None, counts: AnswerCounts | None = None
) -> dict[str, Any]:
    """The `event` a template sees: plain values, times already in words (Dutch and English)."""
    tz = ZoneInfo(event.timezone)
    start, end = event.starts_at.astimezone(tz), event.ends_at.astimezone(tz)
    deadline = event.rsvp_deadline
    return {
        "id": event.id,
        "uid": event.uid,
        "title": event.title,
        "region": event.region,
        "status": event.status,
        "cancelled": event.status == "cancelled",
        "sequence": event.sequence,
        "starts_at": start,
        "ends_at": end,
        "timezone": event.timezone,
        "when": format_when(event.starts_at, event.ends_at, event.timezone, "nl"),
        "when_en": format_when(event.starts_at, event.ends_at, event.timezone, "en"),
        "day": format_day(event.starts_at, event.timezone, "nl"),
        "day_en": format_day(event.starts_at, event.timezone, "en"),
        "venue": event.venue,
        "address": event.address,
        "address_lines": [line for line in event.address.splitlines() if line.strip()],
        # Venue and address on one line: "Provinciehuis, Martinikerkhof 12, Groningen".
        "place": ", ".join(
            part.strip()
            for part in [event.venue, *event.address.splitlines()]
            if part.strip()
        ),
        "online_url": event.online_url,
        "description": event.description,
        "capacity": event.capacity,
        "seats_left": seats,
        "counts": dataclasses.asdict(counts) if counts is not None else None,
        "deadline": format_moment(deadline, event.timezone, "nl") if deadline else "",
        "deadline_en": format_moment(deadline, event.timezone, "en") if deadline else "",
    }


def _organizer(settings: Settings) -> Organizer:
    return Organizer(settings.sender.name, settings.sender.address)


def reply_address(settings: Settings, signer: Signer, subscriber_id: int, event_id: int,
                  organizer_format: str = ORGANIZER_SEALED) -> str:
    """The ORGANIZER address in one person's invitation: their answers from the calendar come
    back to it, through the bounce intake (mailer.events.itip).

    `organizer_format` is the meeting's own (Event.organizer_format): a meeting keeps the
    shape its first invitations had, or calendars take an update as another organiser's.
    """
    domain = settings.events.reply_domain or settings.sender.bounce_domain
    return signer.reply_address(subscriber_id, event_id, domain, settings.events.reply_prefix,
                                sealed=organizer_format == ORGANIZER_SEALED)


def personal_calendar(
    settings: Settings,
    signer: Signer,
    event: Event,
    *,
    method: str | None = None,
    organizer_name: str | None = None,
    url: str = "",
) -> PersonalCalendar:
    """The meeting's calendar for any of its recipients (CANCEL once cancelled)."""
    if method is None:
        method = METHOD_CANCEL if event.status == "cancelled" else METHOD_REQUEST
    template = calendar_template(
        event, organizer_name=settings.sender.name if organizer_name is None else organizer_name,
        method=method, url=url,
    )
    event_id, organizer_format = event.id, event.organizer_format
    return PersonalCalendar(
        template, lambda subscriber_id: reply_address(settings, signer, subscriber_id, event_id,
                                                      organizer_format)
    )


def event_calendar(
    settings: Settings | Organizer,
    event: Event,
    *,
    method: str | None = None,
    url: str = "",
    attendee: tuple[str, str] | None = None,
) -> bytes:
    """The .ics for the meeting without a personal reply address (a file to download).

    The organizer is the configured sender (or the Organizer given).
    """
    if method is None:
        method = METHOD_CANCEL if event.status == "cancelled" else METHOD_REQUEST
    organizer = settings if isinstance(settings, Organizer) else _organizer(settings)
    return calendar_bytes(event, organizer=organizer, method=method, url=url, attendee=attendee)


def invitation_extras(
    session: Session, campaign: Campaign, settings: Settings, signer: Signer
) -> tuple[dict[str, Any], PersonalCalendar]:
    """The `event` context and the personal calendar for a campaign about a meeting.

    Invitations and updates carry METHOD:REQUEST, a cancellation METHOD:CANCEL, all with the
    event's one UID and current SEQUENCE. The composition root hands it to build_renderer; the
    organizer is the configured sender's name at each person's reply address.
    """
    if campaign.event_id is None:
        raise EventError(f"campaign {campaign.id}: not about a meeting")
    event = get_event(session, campaign.event_id)
    # (Cancelling a meeting stops its unsent invitations; "view online" of an old invitation
    # still renders, with the meeting shown as cancelled.)
    method = METHOD_CANCEL if campaign.kind == "cancellation" else METHOD_REQUEST
    counts = event_counts(session, event.id)
    context = event_context(event, seats=seats_left(event, counts), counts=counts)
    return context, personal_calendar(settings, signer, event, method=method)
