"""Template filters for dates and times in the reader's language, via babel.

    {{ campaign.meta.datum|datum }}       → dinsdag 10 april 2027   (en: Saturday 10 April 2027)
    {{ event.starts_at|tijd }}            → 13.30 uur                (en: 1:30 PM)
    {{ event.starts_at|datumtijd }}       → dinsdag 10 april 2027 om 13.30 uur
                                            (en: Saturday 10 April 2027, 1:30 PM)
    {{ some_date|datum("d MMMM") }}       → 10 april                 (a babel/CLDR pattern)

Values may be dates, datetimes (aware ones are shown in the configured time zone) or ISO 8601
strings (front matter dates are stored as strings). The language comes from the template
context's `language`, so a Dutch template shows Dutch dates and an English one English dates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from jinja2 import pass_context
from jinja2.runtime import Context

__all__ = ["make_filters", "to_datetime"]

_LOCALES = {"nl": "nl_NL", "en": "en_GB"}


def to_datetime(value: Any) -> dt.date | dt.datetime:
    """A date or datetime from a date, datetime or ISO 8601 string; ValueError otherwise."""
    if isinstance(value, dt.datetime | dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"not a date or time: {value!r}")


def make_filters(tz: ZoneInfo) -> dict[str, Any]:
    """The date filters for one time zone."""

    def local(value: Any) -> dt.date | dt.datetime:
        when = to_datetime(value)
        if isinstance(when, dt.datetime) and when.tzinfo is not None:
            when = when.astimezone(tz)
        return when

    def locale_of(ctx: Context) -> str:
        return _LOCALES.get(str(ctx.get("language", "nl")), "nl_NL")

    @pass_context
    def datum(ctx: Context, value: Any, pattern: str = "full") -> str:
        when = local(value)
        day = when.date() if isinstance(when, dt.datetime) else when
        if pattern == "full":  # one house style per language: no comma after the day name
            pattern = "EEEE d MMMM y"
        return format_date(day, format=pattern, locale=locale_of(ctx))

    @pass_context
    def tijd(ctx: Context, value: Any) -> str:
        when = local(value)
        if not isinstance(when, dt.datetime):
            raise ValueError(f"a date has no time of day: {value!r}")
        if locale_of(ctx) == "nl_NL":
            # Dutch house style writes 13.30 uur, not CLDR's 13:30.
            return f"{when.hour}.{when.minute:02d} uur"
        # en_GB's day period is "pm"; the English house style is "1:30 PM".
        # (A plain space: CLDR's narrow no-break space shows as a box in some Outlook fonts.)
        return format_time(when.time(), format="h:mm a", locale="en_US").replace("\u202f", " ")

    @pass_context
    def datumtijd(ctx: Context, value: Any) -> str:
        joiner = " om " if locale_of(ctx) == "nl_NL" else ", "
        return datum(ctx, value) + joiner + tijd(ctx, value)

    return {
        "datum": datum,
        "tijd": tijd,
        "datumtijd": datumtijd,
        # English names for the same filters, for templates written in English.
        "date": datum,
        "time": tijd,
        "datetime": datumtijd,
    }
