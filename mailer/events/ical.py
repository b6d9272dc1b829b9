"""The iCalendar (RFC 5545 / iTIP RFC 5546 / iMIP RFC 6047) file that invitations, updates and
cancellations carry.

The UID is the event's own and never changes; SEQUENCE is the event's change counter. So a
calendar that already holds the meeting moves it on an update (METHOD:REQUEST, higher SEQUENCE)
and removes it on a cancellation (METHOD:CANCEL, same UID), instead of adding a second one.
Times carry TZID=<zone> with that zone's VTIMEZONE in RRULE form (vtimezone.py), so Outlook
shows 13.30 in Amsterdam in winter and in summer.

A campaign's calendar is built once (`calendar_template`); per recipient only two lines differ
and are spliced in: ORGANIZER, whose address carries the person's signed reply token (so
Accept / Decline in their calendar comes back to us, see mailer.events.itip), and ATTENDEE
(CN, RSVP=TRUE, PARTSTAT), which RFC 5546 requires in a REQUEST and CANCEL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from icalendar import Calendar
from icalendar import Event as VEvent

from mailer.events.models import Event
from mailer.events.vtimezone import vtimezone

__all__ = [
    "Organizer",
    "CalendarTemplate",
    "calendar_template",
    "calendar_bytes",
    "ics_content_type",
    "METHOD_REQUEST",
    "METHOD_CANCEL",
    "PARTSTATS",
    "PersonalCalendar",
    "FILENAMES",
]

METHOD_REQUEST = "REQUEST"
METHOD_CANCEL = "CANCEL"
PRODID = "-//GT Gemeentelijke Telecommunicatie//GT Mailer//NL"
#: A person's answer -> their PARTSTAT in the calendar we send them.
PARTSTATS = {"yes": "ACCEPTED", "maybe": "TENTATIVE", "no": "DECLINED", "": "NEEDS-ACTION"}
_ORGANIZER_SLOT = "X-GT-ORGANIZER:slot"
_ATTENDEE_SLOT = "X-GT-ATTENDEE:slot"


def ics_content_type(method: str) -> str:
    """The MIME type with the method parameter calendar clients look for."""
    return f'text/calendar; charset="utf-8"; method={method}'


@dataclass(frozen=True)
class Organizer:
    name: str
    email: str


def _param(value: str) -> str:
    """A quoted parameter value: no control characters, no double quotes (RFC 5545 3.2)."""
    cleaned = "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in value)
    return '"' + cleaned.replace('"', "'").strip() + '"'


def fold(line: str) -> str:
    """One content line folded at 75 octets, never inside a UTF-8 sequence; with CRLF."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line + "\r\n"
    out: list[str] = []
    limit = 75
    while data:
        cut = min(limit, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:  # a continuation byte
            cut -= 1
        out.append(data[:cut].decode("utf-8"))
        data = data[cut:]
        limit = 74  # the leading space of a continuation counts
    return "\r\n ".join(out) + "\r\n"


def address_line(name: str, address: str, **params: str) -> str:
    """An ORGANIZER or ATTENDEE property value with its parameters, unfolded."""
    head = "".join(f";{key.replace('_', '-')}={value}" for key, value in params.items())
    cn = f";CN={_param(name)}" if name.strip() else ""
    return f"{cn}{head}:mailto:{address}"


@dataclass(frozen=True)
class CalendarTemplate:
    """A calendar with the ORGANIZER and ATTENDEE lines left open."""

    method: str
    head: str
    middle: str
    tail: str
    organizer_name: str

    def personal(self, organizer_address: str, attendee_name: str, attendee_address: str,
                 partstat: str = "NEEDS-ACTION") -> str:
        return "".join((self.head, self.organizer_line(organizer_address), self.middle,
                        self.attendee_line(attendee_name, attendee_address, partstat), self.tail))

    def organizer_line(self, address: str) -> str:
        return fold("ORGANIZER" + address_line(self.organizer_name, address))

    def attendee_line(self, name: str, address: str, partstat: str = "NEEDS-ACTION") -> str:
        if self.method == METHOD_CANCEL:
            return fold("ATTENDEE" + address_line(name, address, ROLE="REQ-PARTICIPANT"))
        return fold("ATTENDEE" + address_line(
            name, address, ROLE="REQ-PARTICIPANT", PARTSTAT=partstat, RSVP="TRUE"
        ))


def calendar_template(
    event: Event,
    *,
    organizer_name: str,
    method: str = METHOD_REQUEST,
    url: str = "",
    stamp: dt.datetime | None = None,
) -> CalendarTemplate:
    """The meeting's calendar, everything but the two personal lines."""
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
    vevent.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    vevent.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    if cancelled:
        vevent.add("x-microsoft-cdo-busystatus", "FREE")
    cal.add_component(vevent)
    text = cal.to_ical().decode("utf-8")
    # The VTIMEZONE goes before the VEVENT that uses it, in its RRULE form.
    text = text.replace("BEGIN:VEVENT\r\n", vtimezone(event.timezone) + "BEGIN:VEVENT\r\n", 1)
    head, rest = text.split("END:VEVENT\r\n", 1)
    # ORGANIZER and ATTENDEE at the end of the VEVENT, as two open slots.
    head = head + _ORGANIZER_SLOT + "\r\n" + _ATTENDEE_SLOT + "\r\n"
    before, after = head.split(_ORGANIZER_SLOT + "\r\n")
    middle, _ = after.split(_ATTENDEE_SLOT + "\r\n")
    return CalendarTemplate(method, before, middle, "END:VEVENT\r\n" + rest, organizer_name)


def calendar_bytes(
    event: Event,
    *,
    organizer: Organizer,
    method: str = METHOD_REQUEST,
    url: str = "",
    attendee: tuple[str, str] | None = None,
    partstat: str = "NEEDS-ACTION",
    stamp: dt.datetime | None = None,
) -> bytes:
    """The .ics for one meeting; `attendee` (name, address) personalises it for one person.

    Without an attendee (a file to download) the ATTENDEE line is left out.
    """
    template = calendar_template(event, organizer_name=organizer.name, method=method, url=url,
                                 stamp=stamp)
    if attendee is None:
        return (template.head + template.organizer_line(organizer.email) + template.middle
                + template.tail).encode("utf-8")
    return template.personal(organizer.email, attendee[0], attendee[1], partstat).encode("utf-8")


#: The .ics attachment's name in the recipient's language.
FILENAMES = {
    METHOD_REQUEST: {"nl": "uitnodiging.ics", "en": "invitation.ics"},
    METHOD_CANCEL: {"nl": "afzegging.ics", "en": "cancellation.ics"},
}


@dataclass(frozen=True)
class PersonalCalendar:
    """One meeting's calendar for any recipient: the template, and how to fill its two lines.

    `organizer_address(subscriber_id)` is the person's signed reply address (tokens.Signer).
    """

    template: CalendarTemplate
    organizer_address: Callable[[int], str]

    @property
    def method(self) -> str:
        return self.template.method

    def text(self, name: str, email: str, subscriber_id: int, language: str,
             partstat: str = "NEEDS-ACTION") -> str:
        return self.template.personal(self.organizer_address(subscriber_id), name, email,
                                      partstat)

    def filename(self, language: str) -> str:
        names = FILENAMES[self.template.method]
        return names.get(language, names["nl"])
