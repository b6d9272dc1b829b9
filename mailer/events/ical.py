"""The iCalendar (RFC 5545 / iTIP RFC 5546) file that invitations, updates and cancellations carry.

The UID is the event's own and never changes; SEQUENCE is the event's change counter. So a
calendar that already holds the meeting moves it on an update (METHOD:REQUEST, higher SEQUENCE)
and removes it on a cancellation (METHOD:CANCEL, same UID), instead of adding a second one.
Times carry TZID=<zone> with that zone's VTIMEZONE, so Outlook shows 13.30 in Amsterdam.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from icalendar import Calendar, vCalAddress, vText
from icalendar import Event as VEvent

from mailer.events.models import Event

__all__ = ["Organizer", "calendar_bytes", "ics_content_type", "METHOD_REQUEST", "METHOD_CANCEL"]

METHOD_REQUEST = "REQUEST"
METHOD_CANCEL = "CANCEL"
PRODID = "-//GT Gemeentelijke Telecommunicatie//GT Mailer//NL"


def ics_content_type(method: str) -> str:
    """The MIME type with the method parameter calendar clients look for."""
    return f'text/calendar; charset="utf-8"; method={method}'


@dataclass(frozen=True)
class Organizer:
    name: str
    email: str


def calendar_bytes(
    event: Event,
    *,
    organizer: Organizer,
    method: str = METHOD_REQUEST,
    url: str = "",
    attendee: tuple[str, str] | None = None,
    stamp: dt.datetime | None = None,
) -> bytes:
    """The .ics for one meeting; `attendee` (name, address) personalises it for one person."""
    if method not in (METHOD_REQUEST, METHOD_CANCEL):
        raise ValueError(f"unsupported iTIP method {method!r}")
    tz = ZoneInfo(event.timezone)
    start = event.starts_at.astimezone(tz)
    end = event.ends_at.astimezone(tz)
    cancelled = method == METHOD_CANCEL or event.status == "cancelled"

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)

    vevent = VEvent()
    vevent.add("uid", event.uid)
    vevent.add("sequence", event.sequence)
    vevent.add("dtstamp", (stamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    vevent.add("dtstart", start)
    vevent.add("dtend", end)
    vevent.add("summary", event.title)
    location = ", ".join(part for part in (event.venue, event.address.replace("\n", ", ")) if part)
    if not location and event.online_url:
        location = event.online_url
    if location:
        vevent.add("location", location)
    description = event.description.strip()
    if event.online_url:
        description = (description + "\n\n" if description else "") + event.online_url
    if description:
        vevent.add("description", description)
    link = url or event.online_url
    if link:
        vevent.add("url", link)
    org = vCalAddress(f"mailto:{organizer.email}")
    org.params["cn"] = vText(organizer.name)
    vevent.add("organizer", org)
    if attendee is not None:
        name, address = attendee
        who = vCalAddress(f"mailto:{address}")
        if name:
            who.params["cn"] = vText(name)
        who.params["role"] = vText("REQ-PARTICIPANT")
        who.params["rsvp"] = vText("FALSE")
        vevent.add("attendee", who)
    vevent.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    vevent.add("transp", "OPAQUE")
    cal.add_component(vevent)
    # Only the years the meeting touches: a VTIMEZONE of 70 years of rules bloats every mail.
    cal.add_missing_timezones(
        first_date=dt.date(start.year - 1, 1, 1), last_date=dt.date(end.year + 1, 12, 31)
    )
    return cal.to_ical()
