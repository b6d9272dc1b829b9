"""How a meeting's time reads in mail and on pages: "dinsdag 10 april, 13.30–16.00 uur",
"Saturday 10 April, 1:30–4:00 PM".

Also reads the local times people type ("2027-04-10 13:30") as aware UTC, refusing the hour
that does not exist when the clocks go forward and asking which is meant of the hour that
happens twice when they go back. Formatting uses Babel's Dutch and English.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time

from mailer.errors import EventError
from mailer.kernel import localtime

__all__ = ["parse_local", "format_when", "format_day", "format_moment", "format_local"]

_LOCALES = {"nl": "nl_NL", "en": "en_GB"}


def parse_local(text: str, zone: str, *, what: str = "time") -> dt.datetime:
    """A wall-clock time in `zone` ("YYYY-MM-DD HH:MM", or with an offset) as aware UTC.

    Read as `campaigns schedule --at` reads it: a time inside the spring-forward gap does not
    exist and is refused; a time in the autumn hour that happens twice is refused too, naming
    the two offsets to choose from ("2027-10-31 02:30+02:00" or "...+01:00"), since either
    guess may be wrong.
    """
    try:
        return localtime.parse_local(text, zone, date_only=True)
    except ValueError as exc:
        raise EventError(f"{what}: {exc}") from None


def _locale(language: str) -> str:
    return _LOCALES.get(language, "nl_NL")


def format_local(moment: dt.datetime, zone: str) -> str:
    """"2027-04-10 13:30", the form the CLI reads back."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def format_day(moment: dt.datetime, zone: str, language: str = "nl", *, year: bool = False) -> str:
    """"dinsdag 10 april" / "Tuesday 10 April" (with the year when asked)."""
    local = moment.astimezone(ZoneInfo(zone))
    return format_date(local.date(), "EEEE d MMMM y" if year else "EEEE d MMMM",
                       locale=_locale(language))


def _clock(moment: dt.datetime, language: str) -> str:
    if language == "nl":
        return format_time(moment, "HH.mm", locale="nl_NL")
    # English readers get the English clock: 1:30 PM (en_GB's day period would be "pm").
    return format_time(moment, "h:mm a", locale="en_US").replace("\u202f", " ")


def format_when(
    starts: dt.datetime, ends: dt.datetime, zone: str, language: str = "nl",
    *, year: bool = False,
) -> str:
    """"dinsdag 10 april, 13.30–16.00 uur"; a meeting over several days names both days."""
    tz = ZoneInfo(zone)
    start, end = starts.astimezone(tz), ends.astimezone(tz)
    suffix = " uur" if language == "nl" else ""
    day = format_day(start, zone, language, year=year)
    if start.date() == end.date():
        first, last = _clock(start, language), _clock(end, language)
        if language != "nl" and first[-2:] == last[-2:]:
            first = first[:-3]  # "1:30–4:00 PM", the day period once
        return f"{day}, {first}–{last}{suffix}"
    end_day = format_day(end, zone, language, year=year)
    return (
        f"{day}, {_clock(start, language)}{suffix} – {end_day}, {_clock(end, language)}{suffix}"
    )


def format_moment(moment: dt.datetime, zone: str, language: str = "nl") -> str:
    """"vrijdag 2 april, 17.00 uur" / "Friday 2 April, 17:00" (e.g. an RSVP deadline)."""
    local = moment.astimezone(ZoneInfo(zone))
    suffix = " uur" if language == "nl" else ""
    return f"{format_day(local, zone, language)}, {_clock(local, language)}{suffix}"
