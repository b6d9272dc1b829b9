"""Reads the times people type ("2027-04-10 09:00", optionally "+02:00") as aware UTC.

One reading for every command that takes a time, so `campaigns schedule --at` and `events
create --starts` agree: a wall-clock time inside the spring-forward gap does not exist and is
refused; the autumn hour that happens twice is refused too, naming the two offsets to choose
from (either guess may be wrong, so the person says which); an offset beyond what any zone uses
is refused. A caller that asks in its own way (a page offering the two as a choice) reads it as
its first occurrence with `repeated="first"` and then asks. Errors are ValueError with a
message the caller prefixes with what it read.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["parse_local"]

_TIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{1,2}:\d{2})(:\d{2})?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
# Real zones run from UTC-12 to UTC+14; anything past that is a typo, not a place.
_MAX_OFFSET = dt.timedelta(hours=14)
_MIN_OFFSET = -dt.timedelta(hours=12)


def _offset_text(offset: dt.timedelta | None) -> str:
    minutes = int((offset or dt.timedelta()).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _offset(text: str, raw: str) -> dt.timezone:
    if text == "Z":
        return dt.UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    delta = dt.timedelta(hours=hours, minutes=minutes) * (-1 if text[0] == "-" else 1)
    if minutes >= 60 or not _MIN_OFFSET <= delta <= _MAX_OFFSET:
        raise ValueError(f"{raw!r}: {text} is not a UTC offset (from -12:00 to +14:00)")
    return dt.timezone(delta)


def parse_local(
    text: str,
    zone: str,
    *,
    repeated: Literal["ask", "first"] = "ask",
    date_only: bool = False,
) -> dt.datetime:
    """`text` as an aware UTC datetime: a wall-clock time in `zone` unless it has an offset.

    `repeated="ask"` refuses the autumn hour that happens twice and names the two offsets to
    choose from; `"first"` reads it as its first (summer-time) occurrence. `date_only` also
    takes a bare date (its midnight).
    """
    raw = text.strip()
    match = _TIME_RE.match(raw)
    if not match or (match.group(2) is None and not date_only):
        raise ValueError(f"{raw!r} is not a time like 2027-04-10 13:30 (YYYY-MM-DD HH:MM)")
    date, clock, seconds, offset = match.groups()
    try:
        naive = dt.datetime.fromisoformat(f"{date}T{(clock or '00:00').zfill(5)}{seconds or ''}")
    except ValueError:
        raise ValueError(f"{raw!r} is not a real date and time") from None
    if offset:
        return naive.replace(tzinfo=_offset(offset, raw)).astimezone(dt.UTC)
    tz = ZoneInfo(zone)
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != naive:
        raise ValueError(f"{raw} does not exist in {zone} (the clocks go forward that night)")
    if first.utcoffset() != second.utcoffset() and repeated == "ask":
        raise ValueError(
            f"{raw} happens twice in {zone} (the clocks go back that night): say which, "
            f"\"{raw}{_offset_text(first.utcoffset())}\" (the first) or "
            f"\"{raw}{_offset_text(second.utcoffset())}\" (the second)"
        )
    return first.astimezone(dt.UTC)
