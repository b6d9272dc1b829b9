"""Meetings on both backends: capacity, waiting list, deadline, DST, edits, reminders, export."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.errors import EventError, NotFoundError
from mailer.events import queries, service
from mailer.events.dates import format_when, parse_local
from mailer.events.models import EventMail, RsvpChange
from mailer.settings import Settings
from subscribers.service import SubscriberData, add_subscriber

AMS = ZoneInfo("Europe/Amsterdam")
NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


def local(text: str) -> dt.datetime:
    return parse_local(text, "Europe/Amsterdam")


def make_people(session: Session, n: int, region: str = "Noord") -> list[int]:
    ids = []
    for i in range(n):
        sub = add_subscriber(
            session,
            SubscriberData(email=f"p{i}@gemeente{i}.nl", name=f"Persoon {i:02d}",
                           organisation=f"Gemeente {i}", region=region),
        )
        ids.append(sub.id)
    return ids


def make_event(session: Session, settings: Settings, **overrides: object) -> int:
    fields = {
        "title": "GT Connect regio Noord",
        "region": "noord",
        "starts_at": local("2027-04-13 13:30"),
        "ends_at": local("2027-04-13 16:00"),
        "venue": "Provinciehuis",
        "address": "Martinikerkhof 12\nGroningen",
        "capacity": 2,
        **overrides,
    }
    event = service.create_event(session, settings, service.EventFields(**fields), now=NOW)
    return event.id


def mails(session: Session, kind: str) -> list[int]:
    stmt = select(EventMail.subscriber_id).where(EventMail.kind == kind).order_by(EventMail.id)
    return list(session.scalars(stmt))


def test_create_checks_and_normalises(session: Session, settings: Settings) -> None:
    eid = make_event(session, settings)
    event = service.get_event(session, eid)
    assert event.region == "Noord"
    assert event.uid.endswith("@" + settings.sender.list_id_domain)
    assert event.starts_at == dt.datetime(2027, 4, 13, 11, 30, tzinfo=dt.UTC)  # CEST = UTC+2
    assert event.sequence == 0 and event.status == "active"
    with pytest.raises(EventError, match="ends: the meeting must end after it starts"):
        make_event(session, settings, ends_at=local("2027-04-13 12:00"))
    with pytest.raises(EventError, match="region: unknown region 'Atlantis'"):
        make_event(session, settings, region="Atlantis")
    with pytest.raises(EventError, match="capacity"):
        make_event(session, settings, capacity=0)
    with pytest.raises(EventError, match="deadline"):
        make_event(session, settings, rsvp_deadline=local("2027-04-14 12:00"))
    with pytest.raises(NotFoundError):
        service.get_event(session, 9999)


def test_capacity_waiting_list_and_promotion(session: Session, settings: Settings) -> None:
    a, b, c, d = make_people(session, 4)
    eid = make_event(session, settings, capacity=2)
    first = service.rsvp(session, settings, eid, a, "yes", now=NOW)
    assert (first.waiting, first.seats_left) == (False, 1)
    service.rsvp(session, settings, eid, b, "yes", now=NOW + dt.timedelta(minutes=1))
    third = service.rsvp(session, settings, eid, c, "yes", now=NOW + dt.timedelta(minutes=2))
    fourth = service.rsvp(session, settings, eid, d, "yes", now=NOW + dt.timedelta(minutes=3))
    assert (third.waiting, third.position, third.seats_left) == (True, 1, 0)
    assert (fourth.waiting, fourth.position) == (True, 2)
    again = service.rsvp(session, settings, eid, d, "yes", now=NOW + dt.timedelta(minutes=4))
    assert not again.changed and again.position == 2

    counts = service.event_counts(session, eid)
    assert (counts.yes, counts.waiting) == (2, 2)
    assert mails(session, "confirmation") == [a, b]
    assert mails(session, "waitlist") == [c, d]

    # b gives up the seat: c, first on the list, gets it (and is owed an e-mail); d moves up.
    freed = service.rsvp(session, settings, eid, b, "no", now=NOW + dt.timedelta(minutes=5))
    assert freed.promoted == (c,)
    assert mails(session, "seat") == [c]
    d_rsvp = service.current_answer(session, eid, d)
    assert d_rsvp is not None and queries.waiting_position(session, d_rsvp) == 1
    counts = service.event_counts(session, eid)
    assert (counts.yes, counts.no, counts.waiting) == (2, 1, 1)

    # A "maybe" from someone waiting frees no seat and promotes nobody.
    maybe = service.rsvp(session, settings, eid, d, "maybe", now=NOW + dt.timedelta(minutes=6))
    assert maybe.promoted == () and not maybe.waiting

    # The history keeps every answer, including the promotion.
    c_rsvp = service.current_answer(session, eid, c)
    assert c_rsvp is not None
    history = session.scalars(
        select(RsvpChange.source).where(RsvpChange.rsvp_id == c_rsvp.id).order_by(RsvpChange.id)
    ).all()
    assert list(history) == ["web", "waitlist"]


def test_more_capacity_seats_the_waiting_list(session: Session, settings: Settings) -> None:
    a, b, c = make_people(session, 3)
    eid = make_event(session, settings, capacity=1)
    for i, person in enumerate((a, b, c)):
        service.rsvp(session, settings, eid, person, "yes", now=NOW + dt.timedelta(minutes=i))
    change = service.edit_event(session, settings, eid, {"capacity": 2}, now=NOW, announce=False)
    assert change.promoted == (b,)
    assert not change.announce and change.event.sequence == 0  # not time or place
    change = service.edit_event(session, settings, eid, {"capacity": None}, now=NOW,
                                announce=False)
    assert change.promoted == (c,)


def test_deadline_and_cancelled(session: Session, settings: Settings) -> None:
    (a,) = make_people(session, 1)
    eid = make_event(session, settings, rsvp_deadline=local("2027-04-06 17:00"))
    service.rsvp(session, settings, eid, a, "yes", now=local("2027-04-06 16:59"))
    with pytest.raises(EventError, match="answers closed at 2027-04-06 17:00"):
        service.rsvp(session, settings, eid, a, "no", now=local("2027-04-06 17:01"))
    service.cancel_event(session, settings, eid, now=NOW, announce=False)
    with pytest.raises(EventError, match="cancelled"):
        service.rsvp(session, settings, eid, a, "no", now=NOW)
    with pytest.raises(EventError, match="answer: must be one of"):
        service.rsvp(session, settings, eid, a, "perhaps", now=NOW)


def test_dst_boundary(session: Session, settings: Settings) -> None:
    # 28 March 2027: clocks go from 02:00 to 03:00 in Amsterdam.
    start = local("2027-03-28 01:30")  # still CET (UTC+1)
    end = local("2027-03-28 04:00")  # already CEST (UTC+2)
    assert start == dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)
    assert end == dt.datetime(2027, 3, 28, 2, 0, tzinfo=dt.UTC)
    with pytest.raises(EventError, match="does not exist"):
        local("2027-03-28 02:30")
    eid = make_event(session, settings, starts_at=start, ends_at=end)
    session.expire_all()
    event = service.get_event(session, eid)
    assert event.starts_at.astimezone(AMS).hour == 1
    assert event.ends_at.astimezone(AMS).hour == 4
    assert (event.ends_at - event.starts_at) == dt.timedelta(hours=1, minutes=30)
    ctx = service.event_context(event)
    assert ctx["when"] == "zondag 28 maart, 01.30–04.00 uur"
    # The autumn hour that happens twice is asked about (as `campaigns schedule` does); an
    # offset says which.
    with pytest.raises(EventError, match=r'happens twice .*"2027-10-31 02:30\+02:00" \(the first\)'
                       r' or "2027-10-31 02:30\+01:00" \(the second\)'):
        local("2027-10-31 02:30")
    assert local("2027-10-31 02:30+02:00") == dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)
    assert local("2027-10-31 02:30+01:00") == dt.datetime(2027, 10, 31, 1, 30, tzinfo=dt.UTC)


def test_dutch_and_english_dates() -> None:
    start, end = local("2027-04-13 13:30"), local("2027-04-13 16:00")
    assert format_when(start, end, "Europe/Amsterdam") == "dinsdag 13 april, 13.30–16.00 uur"
    assert format_when(start, end, "Europe/Amsterdam", "en") == "Tuesday 13 April, 1:30–4:00 PM"
    two_days = format_when(start, local("2027-04-14 12:00"), "Europe/Amsterdam")
    assert two_days == "dinsdag 13 april, 13.30 uur – woensdag 14 april, 12.00 uur"
    with pytest.raises(EventError, match="starts: 'morgen' is not a time"):
        parse_local("morgen", "Europe/Amsterdam", what="starts")


def test_edit_time_raises_sequence_and_moves_reminders(
    session: Session, settings: Settings
) -> None:
    a, b = make_people(session, 2)
    eid = make_event(session, settings, capacity=None)
    service.rsvp(session, settings, eid, a, "yes", now=NOW)
    service.rsvp(session, settings, eid, b, "yes", now=NOW)
    event = service.get_event(session, eid)
    # 7 days before the start: the one-week reminder is owed to both.
    week_before = event.starts_at - dt.timedelta(days=7)
    assert service.queue_due_reminders(session, settings, now=week_before) == 2
    assert service.queue_due_reminders(session, settings, now=week_before) == 0  # never twice

    change = service.edit_event(
        session, settings, eid,
        {"starts_at": local("2027-04-20 13:30"), "ends_at": local("2027-04-20 16:00")},
        now=week_before, announce=False,
    )
    assert change.announce and change.event.sequence == 1
    assert set(change.changed) == {"starts_at", "ends_at"}
    # The owed reminder for the old time is dropped; at the old time nothing is due any more.
    assert mails(session, "reminder") == []
    assert service.queue_due_reminders(session, settings, now=week_before) == 0
    moved = change.event.starts_at - dt.timedelta(days=7)
    assert service.queue_due_reminders(session, settings, now=moved) == 2

    # A change of title only: no new SEQUENCE, nothing to announce.
    plain = service.edit_event(session, settings, eid, {"title": "GT Connect Noord"},
                               now=NOW, announce=False)
    assert not plain.announce and plain.event.sequence == 1
    with pytest.raises(EventError, match="cannot edit uid"):
        service.edit_event(session, settings, eid, {"uid": "x"}, now=NOW)
    # An announcement is rendered with the application's signer; the domain makes none itself.
    with pytest.raises(ValueError, match="needs the application's signer"):
        service.cancel_event(session, settings, eid, now=NOW)


def test_reminders_nearest_only_and_after_yes(session: Session, settings: Settings) -> None:
    early, late = make_people(session, 2)
    eid = make_event(session, settings, capacity=None)
    event = service.get_event(session, eid)
    service.rsvp(session, settings, eid, early, "yes", now=event.starts_at - dt.timedelta(days=9))
    service.rsvp(session, settings, eid, late, "yes", now=event.starts_at - dt.timedelta(days=3))
    # The service was down until 20 hours before: only the one-day reminder, to both.
    queued = service.queue_due_reminders(
        session, settings, now=event.starts_at - dt.timedelta(hours=20)
    )
    assert queued == 2
    keys = session.scalars(select(EventMail.key).where(EventMail.kind == "reminder")).all()
    assert all(k.startswith("reminder:24h:") for k in keys)
    # After the start, nothing.
    assert service.queue_due_reminders(session, settings, now=event.starts_at) == 0


def test_attendee_list_order(session: Session, settings: Settings) -> None:
    a, b, c, d = make_people(session, 4)
    eid = make_event(session, settings, capacity=1)
    service.rsvp(session, settings, eid, d, "no", now=NOW)
    service.rsvp(session, settings, eid, c, "maybe", now=NOW)
    service.rsvp(session, settings, eid, b, "yes", now=NOW)
    service.rsvp(session, settings, eid, a, "yes", now=NOW + dt.timedelta(hours=1))
    rows = service.attendee_list(session, eid)
    assert [(r["name"], r["answer"]) for r in rows] == [
        ("Persoon 01", "yes"), ("Persoon 00", "waiting"), ("Persoon 02", "maybe"),
        ("Persoon 03", "no"),
    ]
    assert rows[0] == {
        "name": "Persoon 01", "organisation": "Gemeente 1", "region": "Noord",
        "answer": "yes", "when": "2027-03-01 10:00", "email": "p1@gemeente1.nl",
    }


def test_erasure_removes_answers_and_gives_the_seat_away(
    session: Session, settings: Settings
) -> None:
    from mailer.events.models import Rsvp
    from mailer.usecases.privacy import erase_person, person_record

    a, b = make_people(session, 2)
    eid = make_event(session, settings, capacity=1, starts_at=local("2099-04-13 13:30"),
                     ends_at=local("2099-04-13 16:00"))
    service.rsvp(session, settings, eid, a, "yes", now=NOW)
    service.rsvp(session, settings, eid, b, "yes", now=NOW)
    record = person_record(session, "p0@gemeente0.nl")
    assert record["meeting_answers"] == [{
        "event": "GT Connect regio Noord", "starts": "2099-04-13 13:30", "answer": "yes",
        "answered_at": NOW,
    }]
    erase_person(session, "p0@gemeente0.nl")
    session.expire_all()
    assert session.scalars(select(Rsvp.subscriber_id)).all() == [b]
    assert set(session.scalars(select(EventMail.subscriber_id))) == {b}
    # The erased person's seat went to the first on the waiting list, who is told.
    assert service.event_counts(session, eid).yes == 1
    assert mails(session, "seat") == [b]


def test_a_changed_answer_drops_the_mail_owed_for_the_old_one(
    session: Session, settings: Settings
) -> None:
    a, b = make_people(session, 2)
    eid = make_event(session, settings, capacity=1)
    service.rsvp(session, settings, eid, a, "yes", now=NOW)
    service.rsvp(session, settings, eid, b, "yes", now=NOW + dt.timedelta(minutes=1))
    assert (mails(session, "confirmation"), mails(session, "waitlist")) == ([a], [b])
    # Before anything was sent, a says no: no confirmation for a, and b's waiting-list note
    # gives way to the seat mail.
    service.rsvp(session, settings, eid, a, "no", now=NOW + dt.timedelta(minutes=2))
    assert mails(session, "confirmation") == []
    assert mails(session, "waitlist") == []
    assert mails(session, "seat") == [b]
