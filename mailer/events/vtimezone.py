"""A VTIMEZONE whose daylight-saving changes are yearly rules (RRULE), as Outlook needs them.

icalendar's own VTIMEZONE lists every change as an RDATE; Outlook reads only the first
STANDARD and DAYLIGHT and their RRULEs, so with RDATEs it shows a summer meeting an hour off.
The rule comes from the POSIX TZ string at the end of the zone's TZif file (RFC 8536 footer,
e.g. "CET-1CEST,M3.5.0,M10.5.0/3" for Europe/Amsterdam): the rule in force today and after,
which is what a meeting in the coming months needs (applied from 1970, as Outlook applies its
own from 1601). A zone without daylight saving gets one
STANDARD; a zone whose footer cannot be read falls back to icalendar's RDATE form.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

from icalendar import Timezone

__all__ = ["vtimezone", "posix_rule"]

_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
# std offset [dst [offset] [,start[/time],end[/time]]]; names may be <+03>-style.
_POSIX = re.compile(
    r"^(?P<std><[^>]+>|[A-Za-z]{3,})(?P<stdoff>[+-]?\d{1,2}(?::\d{2}){0,2})"
    r"(?:(?P<dst><[^>]+>|[A-Za-z]{3,})(?P<dstoff>[+-]?\d{1,2}(?::\d{2}){0,2})?"
    r",M(?P<sm>\d{1,2})\.(?P<sw>\d)\.(?P<sd>\d)(?:/(?P<st>[+-]?\d{1,3}(?::\d{2}){0,2}))?"
    r",M(?P<em>\d{1,2})\.(?P<ew>\d)\.(?P<ed>\d)(?:/(?P<et>[+-]?\d{1,3}(?::\d{2}){0,2}))?)?$"
)


def _seconds(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")] + [0, 0]
    return sign * (parts[0] * 3600 + parts[1] * 60 + parts[2])


def _tzif(zone: str) -> bytes | None:
    """The zone's TZif file: the system's, else the tzdata package's (as zoneinfo finds it)."""
    for root in zoneinfo.TZPATH:
        path = Path(root) / zone
        if path.is_file():
            return path.read_bytes()
    try:
        from importlib import resources

        package, _, name = f"tzdata.zoneinfo/{zone}".rpartition("/")
        return resources.files(package.replace("/", ".")).joinpath(name).read_bytes()
    except (ImportError, OSError, ValueError):
        return None


def _footer(zone: str) -> str | None:
    data = _tzif(zone)
    if data and data[:4] == b"TZif" and data.endswith(b"\n"):
        return data.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii", "replace")
    return None


def posix_rule(zone: str) -> re.Match[str] | None:
    """The zone's POSIX TZ rule, parsed; None when there is none to read."""
    footer = _footer(zone)
    return _POSIX.match(footer) if footer else None


def _offset(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600:02d}{seconds % 3600 // 60:02d}"


def _name(text: str) -> str:
    return text.strip("<>")


def _first(year: int, month: int, week: int, weekday: int, at: int) -> dt.datetime:
    """The first local time of rule Mm.w.d/at in `year` (week 5 = the last such day)."""
    first = dt.date(year, month, 1)
    day = first + dt.timedelta(days=(weekday - (first.isoweekday() % 7)) % 7)
    day += dt.timedelta(weeks=week - 1)
    while day.month != month:
        day -= dt.timedelta(weeks=1)
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=at)


def _rrule(month: int, week: int, weekday: int) -> str:
    ordinal = -1 if week == 5 else week
    return f"FREQ=YEARLY;BYMONTH={month};BYDAY={ordinal}{_DAYS[weekday]}"


#: The rules start here, the same for every meeting: a VTIMEZONE whose first change is after
#: the meeting would leave it outside the rules (and parsers that keep one definition per TZID,
#: vobject among them, would apply the first one they met to every later calendar).
RULES_FROM = 1970


def vtimezone(zone: str, year: int = RULES_FROM) -> str:
    """The VTIMEZONE component (CRLF lines) for `zone`, today's rules applied from `year`."""
    match = posix_rule(zone)
    if match is None:
        fallback = Timezone.from_tzinfo(
            zoneinfo.ZoneInfo(zone), first_date=dt.date(year, 1, 1),
            last_date=dt.date(year + 2, 12, 31),
        )
        return fallback.to_ical().decode("utf-8")
    # POSIX offsets are west-positive: "CET-1" is UTC+1.
    std = -_seconds(match["stdoff"])
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone}"]
    if not match["dst"]:
        lines += ["BEGIN:STANDARD", f"DTSTART:{year}0101T000000", f"TZNAME:{_name(match['std'])}",
                  f"TZOFFSETFROM:{_offset(std)}", f"TZOFFSETTO:{_offset(std)}", "END:STANDARD"]
    else:
        dst = -_seconds(match["dstoff"]) if match["dstoff"] else std + 3600
        to_dst = _first(year, int(match["sm"]), int(match["sw"]), int(match["sd"]),
                        _seconds(match["st"] or "2"))
        to_std = _first(year, int(match["em"]), int(match["ew"]), int(match["ed"]),
                        _seconds(match["et"] or "2"))
        # DTSTART is local time before the change (RFC 5545 3.6.5): the wall-clock moment.
        lines += [
            "BEGIN:STANDARD", f"DTSTART:{to_std:%Y%m%dT%H%M%S}",
            "RRULE:" + _rrule(int(match["em"]), int(match["ew"]), int(match["ed"])),
            f"TZNAME:{_name(match['std'])}", f"TZOFFSETFROM:{_offset(dst)}",
            f"TZOFFSETTO:{_offset(std)}", "END:STANDARD",
            "BEGIN:DAYLIGHT", f"DTSTART:{to_dst:%Y%m%dT%H%M%S}",
            "RRULE:" + _rrule(int(match["sm"]), int(match["sw"]), int(match["sd"])),
            f"TZNAME:{_name(match['dst'])}", f"TZOFFSETFROM:{_offset(std)}",
            f"TZOFFSETTO:{_offset(dst)}", "END:DAYLIGHT",
        ]
    lines.append("END:VTIMEZONE")
    return "\r\n".join(lines) + "\r\n"
