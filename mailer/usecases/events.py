"""Meeting use cases: plan, edit, cancel, invite (with preview, count and test), record an
answer, read the meetings and their attendee list, send what is due.

The `*_event(app, ...)`, `invite`, `record_rsvp` and the read functions are what the CLI calls,
each one transaction on `app.sessions`; `actor` names who asked (an `Actor`, or the OS login
name at the command line). They are thin: the session-level functions below hold the rules and
are what the console calls. Each change checks the actor's permission and writes the audit
trail in the same transaction.

Invitations are meeting mail, made from the meeting and its template rather than written by
someone, and are not subject to the four-eyes rule (README, "Four-eyes and who acts"); the
console asks the `events.invite` permission (approver and up) for them instead.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailer import audit
from mailer.audit import Actor
from mailer.campaigns import queries as campaign_queries
from mailer.campaigns.service import parse_when
from mailer.compose import Recipient, Rendered, build_renderer, sample_recipient
from mailer.compose.headers import check_address
from mailer.database.connect import session_scope
from mailer.delivery.sender import Message
from mailer.errors import CampaignError, EventError, TemplateError
from mailer.events import service
from mailer.events.announce import invitation_campaign, invitation_draft
from mailer.events.dates import format_local, format_when
from mailer.events.models import Event
from mailer.kernel import localtime
from mailer.kernel.tokens import Signer
from mailer.settings import Settings
from mailer.usecases.campaigns import as_actor
from mailer.usecases.meeting_mail import SendReport, run_due_work
from mailer.usecases.users import require
from subscribers import service as subscribers
from subscribers.csvcells import SafeWriter, neutralise
from subscribers.errors import SubscriberNotFoundError

if TYPE_CHECKING:
    from mailer.app import App

__all__ = [
    "Invited",
    "AmbiguousTime",
    "ATTENDEE_COLUMNS",
    "create_event",
    "edit_event",
    "cancel_event",
    "invite",
    "record_rsvp",
    "list_events",
    "show_event",
    "event_summary",
    "attendee_list",
    "send_due_mail",
    "calendar_replies",
    "read_time",
    "record",
    "overview",
    "detail",
    "counts",
    "attendees",
    "attendee_file",
    "create",
    "edit",
    "cancel",
    "invite_people",
    "invitation_count",
    "invitation_preview",
    "send_invitation_test",
    "record_answer",
    "invite_choices",
]

log = logging.getLogger("mailer.events")

#: The attendee list's columns, in the CLI's order (badges and catering).
ATTENDEE_COLUMNS = ("name", "organisation", "region", "answer", "when", "email")
MAX_TEST_ADDRESSES = 10


@dataclass(frozen=True)
class Invited:
    campaign_id: int
    recipients: int | None  # queued now; None for a scheduled one (its snapshot comes later)
    at: dt.datetime | None  # when it is scheduled for, or None if it started now


class AmbiguousTime(EventError):
    """A wall-clock time in the autumn hour that happens twice: the person must say which.

    `offsets` are the two UTC offsets to choose from ("+02:00" first, "+01:00" second), each
    with the instant it means; `what` names the field.
    """

    def __init__(self, message: str, what: str, offsets: list[tuple[str, dt.datetime]]) -> None:
        super().__init__(message)
        self.what = what
        self.offsets = offsets


_OFFSET_RE = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def _offset_text(offset: dt.timedelta | None) -> str:
    minutes = int((offset or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def read_time(settings: Settings, text: str, what: str, *, offset: str = "") -> dt.datetime:
    """A local time typed in the console ("2027-04-13T13:30" or "2027-04-13 13:30") as UTC.

    The daylight-saving gap is refused as at the command line. The autumn hour that happens
    twice is not guessed: without `offset` (one of the two the error names) it raises
    AmbiguousTime, whose offsets the page offers as a choice.
    """
    raw = text.strip().replace("T", " ", 1)
    try:
        moment = localtime.parse_local(raw, settings.timezone, repeated="first", date_only=True)
    except ValueError as exc:
        raise EventError(f"{what}: {exc}") from None
    if _OFFSET_RE.search(raw[10:]):  # the person gave the offset: nothing to ask
        return moment
    tz = ZoneInfo(settings.timezone)
    naive = moment.astimezone(tz).replace(tzinfo=None)
    both = [naive.replace(tzinfo=tz, fold=fold) for fold in (0, 1)]
    if both[0].utcoffset() == both[1].utcoffset():
        return moment
    choices = [(_offset_text(b.utcoffset()), b.astimezone(dt.UTC)) for b in both]
    for text_, instant in choices:
        if offset.strip() == text_:
            return instant
    shown = naive.strftime("%Y-%m-%d %H:%M")
    raise AmbiguousTime(
        f"{what}: {shown} happens twice in {settings.timezone} (the clocks go back that "
        f"night): choose {shown}{choices[0][0]} (the first) or {shown}{choices[1][0]} "
        "(the second)", what, choices)


# -- what the CLI calls ----------------------------------------------------------------------


def create_event(app: App, fields: service.EventFields, *, actor: Actor | str) -> Event:
    with session_scope(app.sessions) as session:
        event = create(session, app.settings, as_actor(actor), fields)
    log.info("%s created event %d", actor, event.id)
    return event


def edit_event(app: App, event_id: int, changes: Mapping[str, Any], *, announce: bool = True,
               actor: Actor | str) -> service.Change:
    """Change a meeting; unless told not to, the invitees get an update (see events.service)."""
    with session_scope(app.sessions) as session:
        change = edit(session, app.settings, app.signer, as_actor(actor), event_id, changes,
                      announce=announce)
    if change.changed:
        log.info("%s changed event %d (%s)", actor, event_id, ", ".join(change.changed))
    return change


def cancel_event(app: App, event_id: int, *, actor: Actor | str) -> service.Change:
    """Cancel a meeting: everyone invited who has not declined gets a cancellation."""
    with session_scope(app.sessions) as session:
        change = cancel(session, app.settings, app.signer, as_actor(actor), event_id)
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
    actor: Actor | str,
) -> Invited:
    """An invitation campaign (calendar file, Yes / No / Maybe), now or at a local time."""
    when = parse_when(at, app.settings) if at else None
    with session_scope(app.sessions) as session:
        invited = invite_people(session, app.settings, app.signer, as_actor(actor), event_id,
                                lists=lists, regions=regions, at=when, subject=subject)
    log.info("%s invited to event %d (campaign %d)", actor, event_id, invited.campaign_id)
    return invited


def record_rsvp(app: App, event_id: int, email: str, answer: str, *,
                actor: Actor | str) -> service.Answer:
    """Record an answer on someone's behalf (given by phone, say); the page's rules apply."""
    with session_scope(app.sessions) as session:
        outcome = record_answer(session, app.settings, as_actor(actor), event_id, email, answer,
                                source="cli")
    if outcome.changed:
        log.info("%s recorded %s's answer %s for event %d", actor, email, answer, event_id)
    return outcome


def _cli(actor: Actor | str | None) -> Actor:
    return audit.cli_actor() if actor is None else as_actor(actor)


def list_events(app: App, *, include_past: bool = False, actor: Actor | str | None = None
                ) -> list[dict[str, Any]]:
    """The meetings (coming ones, or all) with their counts, as `events ls` shows them."""
    with session_scope(app.sessions) as session:
        return overview(session, _cli(actor), include_past=include_past)


def show_event(app: App, event_id: int, *, actor: Actor | str | None = None
               ) -> dict[str, Any]:
    """One meeting with its counts and campaigns, as `events show` prints it."""
    with session_scope(app.sessions) as session:
        return detail(session, _cli(actor), event_id)


def event_summary(app: App, event_id: int) -> str:
    """"GT Connect regio Noord, dinsdag 13 april, 13.30–16.00 uur"."""
    with session_scope(app.sessions) as session:
        return summary(service.get_event(session, event_id))


def attendee_list(app: App, event_id: int, *, answers: Sequence[str] = (),
                  actor: Actor | str | None = None) -> list[dict[str, Any]]:
    """The attendee list (seated, waiting in order, maybe, no), optionally only some answers."""
    with session_scope(app.sessions) as session:
        return attendees(session, _cli(actor), event_id, answers=answers)


def send_due_mail(app: App) -> tuple[int, SendReport]:
    """Queue the reminders that are due and send all owed meeting mail now."""
    return run_due_work(app)


def calendar_replies(app: App, *, review_only: bool = False, limit: int = 50
                     ) -> list[dict[str, object]]:
    """Answers that came from calendars, newest first (only those kept for review, if asked)."""
    from mailer.events.replies import list_replies

    with session_scope(app.sessions) as session:
        return list_replies(session, review_only=review_only, limit=limit)


# -- reading, one session at a time (the console calls these directly) ----------------------


def summary(event: Event) -> str:
    return f"{event.title}, {format_when(event.starts_at, event.ends_at, event.timezone)}"


def record(event: Event, answer_counts: service.AnswerCounts) -> dict[str, Any]:
    """A meeting as `events ls --json` and `events show --json` give it."""
    return {
        "id": event.id,
        "title": event.title,
        "region": event.region,
        "status": event.status,
        "starts": format_local(event.starts_at, event.timezone),
        "ends": format_local(event.ends_at, event.timezone),
        "timezone": event.timezone,
        "venue": event.venue,
        "address": event.address,
        "online_url": event.online_url,
        "capacity": event.capacity,
        "deadline": format_local(event.rsvp_deadline, event.timezone)
        if event.rsvp_deadline else None,
        "yes": answer_counts.yes,
        "no": answer_counts.no,
        "maybe": answer_counts.maybe,
        "waiting": answer_counts.waiting,
        "seats_left": service.seats_left(event, answer_counts),
        "sequence": event.sequence,
        "uid": event.uid,
    }


def overview(session: Session, actor: Actor, *, include_past: bool = False
             ) -> list[dict[str, Any]]:
    require(actor, "events.read")
    return [record(e, c) for e, c in service.list_events(session, include_past=include_past)]


def detail(session: Session, actor: Actor, event_id: int) -> dict[str, Any]:
    """One meeting: its record, when in words, its description and its campaigns."""
    require(actor, "events.read")
    event = service.get_event(session, event_id)
    info = record(event, service.event_counts(session, event_id))
    info["when"] = format_when(event.starts_at, event.ends_at, event.timezone)
    info["description"] = event.description
    info["past"] = event.starts_at <= dt.datetime.now(dt.UTC)
    info["campaigns"] = [
        {"id": c.id, "kind": c.kind, "status": c.status}
        for c in service.event_campaign_list(session, event_id)
    ]
    return info


def counts(session: Session, actor: Actor, event_id: int) -> dict[str, Any]:
    """The live figures: yes, maybe, no, waiting and seats left."""
    require(actor, "events.read")
    event = service.get_event(session, event_id)
    found = service.event_counts(session, event_id)
    return {"id": event.id, "status": event.status, "capacity": event.capacity,
            "past": event.starts_at <= dt.datetime.now(dt.UTC), "yes": found.yes,
            "maybe": found.maybe, "no": found.no, "waiting": found.waiting,
            "seats_left": service.seats_left(event, found)}


def attendees(session: Session, actor: Actor, event_id: int, *, answers: Sequence[str] = ()
              ) -> list[dict[str, Any]]:
    require(actor, "events.read")
    rows = service.attendee_list(session, event_id)
    return [r for r in rows if r["answer"] in answers] if answers else rows


def attendee_file(session: Session, actor: Actor, event_id: int, fmt: str
                  ) -> tuple[bytes, str, str]:
    """The attendee list as a file: (bytes, media type, file name). CSV is Excel's (`;`,
    UTF-8 with BOM), .xlsx one sheet; in both a cell that starts like a formula is written as
    text (subscribers.csvcells), since names and organisations come from sign-up forms."""
    require(actor, "subscribers.export")
    rows = attendees(session, actor, event_id)
    audit.record(session, actor, "event.attendees.export", ("event", event_id), None,
                 {"format": fmt, "rows": len(rows)})
    name = f"aanmeldingen-{event_id}"
    table = [[r[c] for c in ATTENDEE_COLUMNS] for r in rows]
    if fmt == "xlsx":
        return (_xlsx(list(ATTENDEE_COLUMNS), table),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                f"{name}.xlsx")
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 only with a BOM
    writer = SafeWriter(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(ATTENDEE_COLUMNS)
    writer.writerows(table)
    return out.getvalue().encode("utf-8"), "text/csv; charset=utf-8", f"{name}.csv"


def _xlsx(header: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Aanmeldingen")
    sheet.append(header)
    for row in rows:
        # openpyxl stores a string starting with "=" as a formula: neutralise as in CSV.
        sheet.append([neutralise(cell) for cell in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- changing, one session at a time ---------------------------------------------------------


def _snapshot(event: Event) -> dict[str, Any]:
    """What the audit trail keeps of a meeting before and after a change."""
    return {key: getattr(event, key) for key in (*service.EDITABLE, "status", "sequence")}


def create(session: Session, settings: Settings, actor: Actor, fields: service.EventFields
           ) -> Event:
    require(actor, "events.edit")
    event = service.create_event(session, settings, fields)
    audit.record(session, actor, "event.create", ("event", event.id), None, _snapshot(event))
    return event


def edit(session: Session, settings: Settings, signer: Signer, actor: Actor, event_id: int,
         changes: Mapping[str, Any], *, announce: bool = True) -> service.Change:
    require(actor, "events.edit")
    before = _snapshot(service.get_event(session, event_id))
    change = service.edit_event(session, settings, event_id, changes, announce=announce,
                                signer=signer)
    if change.changed:
        audit.record(session, actor, "event.edit", ("event", event_id), before,
                     _snapshot(change.event) | {"update_campaign": change.campaign_id,
                                                "promoted": len(change.promoted)})
    return change


def cancel(session: Session, settings: Settings, signer: Signer, actor: Actor,
           event_id: int) -> service.Change:
    require(actor, "events.edit")
    before = _snapshot(service.get_event(session, event_id))
    change = service.cancel_event(session, settings, event_id, signer=signer)
    audit.record(session, actor, "event.cancel", ("event", event_id), before,
                 _snapshot(change.event) | {"cancellation_campaign": change.campaign_id})
    return change


def invite_people(session: Session, settings: Settings, signer: Signer, actor: Actor,
                  event_id: int, *, lists: Sequence[str] = (), regions: Sequence[str] = (),
                  at: dt.datetime | None = None, subject: str | None = None) -> Invited:
    """Start (or schedule) the invitation campaign; sending, so `events.invite`."""
    require(actor, "events.invite")
    campaign, count = invitation_campaign(session, settings, signer, event_id, lists=lists,
                                          regions=regions, at=at, subject=subject)
    campaign_id = campaign.id  # (expired by the start: read it in the transaction)
    audit.record(session, actor, "event.invite", ("event", event_id), None,
                 {"campaign": campaign_id, "audience": campaign.audience,
                  "scheduled_at": at, "recipients": count})
    return Invited(campaign_id, count, at)


def _invitation_audience(session: Session, settings: Settings, event: Event,
                         lists: Sequence[str], regions: Sequence[str]) -> dict[str, Any]:
    """The audience `invitation_campaign` will use (the event's region unless others)."""
    wanted = []
    for value in regions or (event.region,):
        region = settings.canonical_region(value)
        if region is None:
            raise EventError(
                f"region: unknown region {value!r} (known: {', '.join(settings.regions)})")
        wanted.append(region)
    slugs = [ml.slug for ml in subscribers.get_lists(session, lists)] if lists else []
    return {"lists": slugs, "regions": wanted, "organisations": [], "languages": []}


def invitation_count(session: Session, settings: Settings, actor: Actor, event_id: int, *,
                     lists: Sequence[str] = (), regions: Sequence[str] = ()) -> int:
    """How many people an invitation to these regions / lists would reach now."""
    require(actor, "events.read")
    event = service.get_event(session, event_id)
    audience = _invitation_audience(session, settings, event, lists, regions)
    return campaign_queries.count_audience(session, audience)


def _renderer(session: Session, settings: Settings, signer: Signer, event_id: int,
              subject: str | None) -> Any:
    from mailer.events.service import invitation_extras

    event = service.get_event(session, event_id)
    campaign = invitation_draft(settings, event, subject=subject or None)
    try:
        return build_renderer(session, campaign, settings, signer, extras=invitation_extras)
    except TemplateError:
        raise
    except Exception as exc:  # a subject typed in the console that does not render
        raise TemplateError(f"subject: {exc}") from None


def invitation_preview(session: Session, settings: Settings, signer: Signer, actor: Actor,
                       event_id: int, *, language: str, subject: str | None = None) -> Rendered:
    """The invitation through the real renderer, for a Dutch or English sample recipient."""
    require(actor, "events.read")
    renderer = _renderer(session, settings, signer, event_id, subject)
    return renderer.render(sample_recipient(settings, language=language))


def send_invitation_test(app: App, event_id: int, *, to: Sequence[str],
                         subject: str | None = None, actor: Actor | str
                         ) -> list[tuple[str, str]]:
    """A copy of the invitation to each address, personalised as that subscriber (its
    buttons and calendar answer for them), through the one sender: [(address, "" when sent,
    else why the relay deferred it)]. Like `campaigns test`: every address must be a
    subscriber's, and the trail shows who sent a test where."""
    who = as_actor(actor)
    addresses = []
    for address in list(to)[:MAX_TEST_ADDRESSES]:
        try:
            addresses.append(check_address(address.strip()))
        except TemplateError:
            raise CampaignError(f"to: not a usable e-mail address: {address[:100]!r}") from None
    if not addresses:
        raise CampaignError("to: give at least one address")
    messages = []
    with session_scope(app.sessions) as session:
        require(who, "events.edit")
        renderer = _renderer(session, app.settings, app.signer, event_id, subject)
        for address in addresses:
            try:
                sub = subscribers.get_subscriber(session, address)
            except SubscriberNotFoundError:
                raise CampaignError(f"{address}: not a subscriber, so the test's buttons would "
                                    "open no page") from None
            recipient = Recipient(
                subscriber_id=sub.id, public_id=sub.public_id, email=sub.email, name=sub.name,
                organisation=sub.organisation, job_title=sub.job_title, region=sub.region,
                language=sub.language, attributes=dict(sub.attributes or {}))
            messages.append((address, renderer.envelope_sender(recipient),
                             renderer.message_bytes(recipient)))
        audit.record(session, who, "event.invite.test", ("event", event_id), None,
                     {"to": addresses})
    results = []
    for address, sender, data in messages:
        outcome, reason = app.sender.send_now("test", Message(sender, address, data))
        log.info("%s sent a test invitation of event %d to %s: %s", who.name, event_id,
                 address, outcome)
        results.append((address, reason if outcome == "deferred" else ""))
    return results


def record_answer(session: Session, settings: Settings, actor: Actor, event_id: int,
                  email: str, answer: str, *, source: str = "console") -> service.Answer:
    """An answer given on someone's behalf: the RSVP page's rules (deadline, capacity, waiting
    list, the confirmation mail owed). The trail names the person by id, not address, so an
    erasure leaves no address behind in it."""
    require(actor, "events.rsvp")
    person = subscribers.get_subscriber(session, email)
    outcome = service.rsvp(session, settings, event_id, person.id, answer, source=source)
    if outcome.changed:
        audit.record(session, actor, "event.rsvp", ("event", event_id), None,
                     {"subscriber_id": person.id, "answer": answer,
                      "waiting": outcome.waiting, "promoted": len(outcome.promoted)})
    return outcome


def invite_choices(session: Session, settings: Settings, actor: Actor) -> dict[str, Any]:
    """What the invitation form offers: the lists (slug, title) and the regions."""
    require(actor, "events.read")
    from subscribers import queries as subscriber_queries

    lists = [(ml.slug, ml.title) for ml, *_counts in subscriber_queries.list_summaries(session)]
    return {"lists": lists, "regions": list(settings.regions)}
