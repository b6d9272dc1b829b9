"""Reading an iTIP REPLY (RFC 5546 3.2.3) out of arrived mail: what a calendar's Accept /
Tentative / Decline sends to the ORGANIZER.

Parsing only: which meeting (UID, SEQUENCE), which organizer address it went to, and each
ATTENDEE with their PARTSTAT. Outlook, Gmail, Apple Calendar and Thunderbird put the calendar
in different places (inline text/calendar in multipart/alternative, an attachment,
application/ics, the whole message), so every part with a calendar type is looked at.
Deciding what a reply means for the meeting is mailer.events.replies' job.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import Message

from icalendar import Calendar

__all__ = ["CalendarReply", "find_reply", "PARTSTAT_ANSWERS"]

#: An attendee's PARTSTAT in a REPLY -> the answer it gives (others are kept for review).
PARTSTAT_ANSWERS = {"ACCEPTED": "yes", "DECLINED": "no", "TENTATIVE": "maybe"}
_CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar")
# A reply's calendar is a few kilobytes; this is far above any client's.
_MAX_CALENDAR = 256 * 1024
_MAX_PARTS = 50


@dataclass(frozen=True)
class CalendarReply:
    """The REPLY found in a message; `problem` says why it cannot be read, if so."""

    uid: str = ""
    sequence: int = 0
    organizer: str = ""
    attendees: tuple[tuple[str, str], ...] = ()  # (address, PARTSTAT), address lower-cased
    prodid: str = ""
    problem: str = ""


def _address(value: object) -> str:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower()


def _calendar_parts(msg: Message) -> list[bytes]:
    found: list[bytes] = []
    for index, part in enumerate(msg.walk()):
        if index >= _MAX_PARTS:
            break
        if part.get_content_type() in _CALENDAR_TYPES or (
            part.get_content_type() == "application/octet-stream"
            and str(part.get_filename() or "").lower().endswith(".ics")
        ):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data:
                found.append(data[:_MAX_CALENDAR])
    return found


def _read(data: bytes) -> CalendarReply | None:
    """The REPLY in one calendar part; None if the part is another method."""
    text = data.decode("utf-8", "replace")
    if "REPLY" not in text.upper():
        return None
    try:
        cal = Calendar.from_ical(text)
    except Exception as exc:  # icalendar raises ValueError and friends on broken input
        return CalendarReply(problem=f"unreadable calendar: {str(exc)[:200]}")
    if str(cal.get("METHOD", "")).strip().upper() != "REPLY":
        return None
    events = list(cal.walk("VEVENT"))
    if len(events) != 1:
        return CalendarReply(problem=f"a REPLY must hold one VEVENT, not {len(events)}")
    vevent = events[0]
    attendees = vevent.get("ATTENDEE")
    if attendees is None:
        attendees = []
    elif not isinstance(attendees, list):
        attendees = [attendees]
    people = tuple(
        (_address(a), str(getattr(a, "params", {}).get("PARTSTAT", "NEEDS-ACTION")).upper())
        for a in attendees
    )
    try:
        sequence = int(str(vevent.get("SEQUENCE", 0)))
    except ValueError:
        sequence = -1
    return CalendarReply(
        uid=str(vevent.get("UID", "")).strip(),
        sequence=sequence,
        organizer=_address(vevent.get("ORGANIZER", "")),
        attendees=people,
        prodid=str(cal.get("PRODID", ""))[:200],
    )


def find_reply(raw: bytes) -> tuple[CalendarReply | None, Message]:
    """(the iTIP REPLY the message carries or None, the parsed message)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    replies = []
    for data in _calendar_parts(msg):
        found = _read(data)
        if found is not None:
            replies.append(found)
    if not replies:
        return None, msg
    # Clients that attach the calendar twice (inline and as a file) send the same one twice.
    readable = [r for r in replies if not r.problem]
    return (readable[0] if readable else replies[0]), msg
