"""The VTIMEZONE in our calendars: yearly RRULEs from the zone's POSIX rule, as Outlook reads
them, and the times they give agree with the zone database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest

from mailer.events.vtimezone import vtimezone


def _offset(zone: str, local: dt.datetime) -> dt.timedelta | None:
    cal = icalendar.Calendar.from_ical(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n" + vtimezone(zone)
        + f"BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART;TZID={zone}:{local:%Y%m%dT%H%M%S}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    return cal.walk("VEVENT")[0]["DTSTART"].dt.utcoffset()


def test_amsterdam_has_rrules_and_no_rdates() -> None:
    text = vtimezone("Europe/Amsterdam")
    assert "RDATE" not in text
    assert "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" in text
    assert "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU" in text
    assert "TZOFFSETTO:+0200" in text and "TZOFFSETTO:+0100" in text


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/New_York", "Australia/Sydney"])
@pytest.mark.parametrize("when", [
    dt.datetime(2027, 1, 15, 12, 0), dt.datetime(2027, 3, 28, 4, 0),
    dt.datetime(2027, 7, 15, 12, 0), dt.datetime(2027, 10, 31, 4, 0),
    dt.datetime(2027, 11, 8, 12, 0), dt.datetime(2099, 7, 15, 12, 0),
])
def test_offsets_agree_with_the_zone_database(zone: str, when: dt.datetime) -> None:
    assert _offset(zone, when) == when.replace(tzinfo=ZoneInfo(zone)).utcoffset()


def test_a_zone_without_daylight_saving_has_one_standard() -> None:
    text = vtimezone("Asia/Tokyo")
    assert text.count("BEGIN:STANDARD") == 1 and "DAYLIGHT" not in text
    assert _offset("Asia/Tokyo", dt.datetime(2027, 7, 1, 12)) == dt.timedelta(hours=9)
