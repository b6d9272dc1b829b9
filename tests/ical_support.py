"""Checks for the calendars in meeting mail: the iMIP structure (RFC 6047) and RFC 5546's
rules for each method, read with two independent parsers (icalendar and vobject)."""

from __future__ import annotations

import base64
import quopri
from email.message import EmailMessage
from pathlib import Path
from string import Template
from typing import Any

import icalendar
import vobject

from mailer.events.ical import fold

__all__ = ["imip_calendar", "check_itip", "calendar_of", "client_reply", "CLIENTS"]

# RFC 5546 section 3.2: per method, VEVENT properties that must appear exactly once
# (SEQUENCE is 0-or-1 in the RFC; we always send it, so calendars can order updates), those
# that must appear at least once, and those that must not appear.
_ONCE = {
    "REQUEST": ("DTSTAMP", "DTSTART", "ORGANIZER", "SUMMARY", "UID", "SEQUENCE"),
    "CANCEL": ("DTSTAMP", "ORGANIZER", "SEQUENCE", "UID"),
    "REPLY": ("ATTENDEE", "DTSTAMP", "ORGANIZER", "UID"),
}
_AT_LEAST_ONE = {"REQUEST": ("ATTENDEE",), "CANCEL": ("ATTENDEE",), "REPLY": ()}
_NEVER = {"REQUEST": ("REQUEST-STATUS",), "CANCEL": ("REQUEST-STATUS",), "REPLY": ()}
_STATUS = {"REQUEST": {"CONFIRMED", "TENTATIVE"}, "CANCEL": {"CANCELLED"}}


def check_itip(text: str, method: str) -> icalendar.Calendar:
    """Parse `text` with icalendar and vobject and assert RFC 5546's rules for `method`."""
    cal = icalendar.Calendar.from_ical(text)
    assert str(cal["METHOD"]).upper() == method, cal.get("METHOD")
    assert str(cal["VERSION"]) == "2.0" and cal.get("PRODID")
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == 1, "one VEVENT"
    vevent = events[0]
    for name in _ONCE[method]:
        values = vevent.get(name)
        assert values is not None, f"{method}: {name} missing"
        assert not isinstance(values, list), f"{method}: {name} more than once"
    for name in _AT_LEAST_ONE[method]:
        assert vevent.get(name) is not None, f"{method}: {name} missing"
    for name in _NEVER[method]:
        assert vevent.get(name) is None, f"{method}: {name} not allowed"
    if "STATUS" in vevent and method in _STATUS:
        assert str(vevent["STATUS"]) in _STATUS[method], vevent["STATUS"]
    if method == "REPLY":
        assert not vevent.walk("VALARM")
    # Every TZID used has its VTIMEZONE, whose changes are RRULEs (Outlook ignores RDATEs).
    zones = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
    for name in ("DTSTART", "DTEND"):
        prop = vevent.get(name)
        if prop is not None and "TZID" in prop.params:
            zone = zones[str(prop.params["TZID"])]
            if method != "REPLY":
                for sub in zone.subcomponents:
                    assert "RDATE" not in sub and (
                        "RRULE" in sub or len(zone.subcomponents) == 1
                    ), f"{zone['TZID']}: rules must be RRULEs"
    # The second parser agrees on what matters.
    other = vobject.readOne(text)
    assert other.method.value.upper() == method
    assert other.vevent.uid.value == str(vevent["UID"])
    return cal


def imip_calendar(msg: EmailMessage, method: str) -> str:
    """The calendar of an iMIP message, after checking its shape:
    multipart/mixed[ multipart/alternative[ text/plain, text/html, text/calendar;method ],
    application/ics attachment with the same calendar ]."""
    assert msg.get_content_type() == "multipart/mixed"
    children = list(msg.iter_parts())
    alternative = children[0]
    assert alternative.get_content_type() == "multipart/alternative"
    types = [p.get_content_type() for p in alternative.iter_parts()]
    assert types == ["text/plain", "text/html", "text/calendar"], types
    inline = list(alternative.iter_parts())[2]
    assert inline.get_param("method") == method
    assert (inline.get_content_charset() or "").lower() == "utf-8"
    attachments = [p for p in msg.iter_attachments() if p.get_content_type() == "application/ics"]
    assert len(attachments) == 1
    data = inline.get_payload(decode=True)
    assert isinstance(data, bytes)
    assert attachments[0].get_payload(decode=True) == data
    text = data.decode("utf-8")
    check_itip(text, method)
    return text


def calendar_of(msg: EmailMessage, method: str = "REQUEST") -> Any:
    """The message's calendar, checked, as vobject reads it."""
    return vobject.readOne(imip_calendar(msg, method))


ITIP_DATA = Path(__file__).parent / "data" / "itip"
CLIENTS = ("outlook", "gmail", "apple", "thunderbird")
_VERBS = {"ACCEPTED": "Accepted", "DECLINED": "Declined", "TENTATIVE": "Tentative"}


def _read(name: str) -> str:
    """A fixture with CRLF line ends, however the checkout stores them."""
    text = (ITIP_DATA / name).read_bytes().decode("utf-8")
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def client_reply(
    client: str, *, organizer: str, attendee: str, name: str, uid: str, sequence: int = 0,
    partstat: str = "ACCEPTED", token: str = "1",
) -> bytes:
    """A REPLY as `client` sends it (tests/data/itip), for the given meeting and attendee."""
    values = {
        "organizer": organizer, "attendee": attendee, "attendee_upper": attendee.upper(),
        "name": name, "uid": uid, "sequence": str(sequence), "partstat": partstat,
        "verb": _VERBS.get(partstat, partstat.title()), "token": token,
    }
    ics = Template(_read(f"{client}.ics")).substitute(values)
    # Clients fold long lines at 75 octets, the organizer's address included.
    ics = "".join(fold(line) for line in ics.split("\r\n") if line)
    data = ics.encode("utf-8")
    values["calendar"] = ics.rstrip("\r\n")
    values["calendar_b64"] = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    values["calendar_qp"] = quopri.encodestring(data).decode("ascii").replace("\r\n", "\n") \
        .replace("\n", "\r\n")
    message = Template(_read(f"{client}.eml")).substitute(values)
    return message.encode("utf-8")
