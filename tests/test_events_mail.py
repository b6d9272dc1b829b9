"""Meeting mail end to end, on both backends, through a real SMTP server on loopback.

Invitations, updates and cancellations go through the delivery engine; confirmations, seats
and reminders through the event-mail sender. Every calendar file is read back with vobject,
an iCalendar parser independent of the icalendar library that wrote it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ical_support import calendar_of
from sqlalchemy import select

from mailer.app import App, build_app
from mailer.campaigns import queries as campaign_queries
from mailer.campaigns.models import Delivery
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.delivery.engine import DeliveryEngine
from mailer.delivery.relay_budget import RelayBudget
from mailer.events import service
from mailer.events.announce import invitation_campaign
from mailer.events.dates import parse_local
from mailer.settings import load_settings
from mailer.usecases.meeting_mail import run_due_work, send_owed_mail
from subscribers import service as subscribers
from subscribers.service import SubscriberData

AMS = ZoneInfo("Europe/Amsterdam")
NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Mailer:
    app: App
    capture: CaptureServer

    def mails(self) -> list[EmailMessage]:
        found = []
        for path in sorted(self.capture.folder.glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            found.append(msg)
        return found

    def clear(self) -> None:
        for path in self.capture.folder.glob("*.eml"):
            path.unlink()

    def by_recipient(self) -> dict[str, EmailMessage]:
        return {str(m["To"].addresses[0].addr_spec): m for m in self.mails()}

    def deliver(self, campaign_id: int) -> None:
        """Run the delivery engine until the campaign's queue is empty."""
        engine = DeliveryEngine(self.app)
        stats = asyncio.run(
            engine.run(asyncio.Event(), until_idle=True, campaign_ids=[campaign_id],
                       idle_seconds=0.05)
        )
        assert stats is not None


@pytest.fixture
def mailer(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Mailer]:
    server = CaptureServer(tmp_path / "outbox")
    monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
    with server:
        app = build_app(load_settings())
        try:
            yield Mailer(app, server)
        finally:
            app.close()


def people(app: App, *specs: tuple[str, str, str]) -> dict[str, int]:
    """Subscribers from (address, region, language); their ids by address."""
    ids = {}
    with session_scope(app.sessions) as session:
        for address, region, language in specs:
            name = address.split("@")[0].title()
            sub = subscribers.add_subscriber(
                session,
                SubscriberData(email=address, name=name, organisation="Gemeente Assen",
                               region=region, language=language),
            )
            ids[address] = sub.id
    return ids


def new_event(app: App, **overrides: Any) -> int:
    zone = app.settings.timezone
    fields = {
        "title": "GT Connect regio Noord",
        "region": "Noord",
        "starts_at": parse_local("2027-04-13 13:30", zone),
        "ends_at": parse_local("2027-04-13 16:00", zone),
        "venue": "Provinciehuis",
        "address": "Martinikerkhof 12\nGroningen",
        "online_url": "https://meet.gt.example.nl/noord",
        "description": "13.30 Inloop\n14.00 Stand van zaken",
        **overrides,
    }
    with session_scope(app.sessions) as session:
        return service.create_event(session, app.settings, service.EventFields(**fields),
                                    now=NOW).id


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_invite_update_cancel_through_the_engine(mailer: Mailer) -> None:
    app = mailer.app
    ids = people(app, ("anna@assen.nl", "Noord", "nl"), ("bram@emmen.nl", "Noord", "nl"),
                 ("john@example.org", "Noord", "en"), ("olga@zwolle.nl", "Oost", "nl"))
    eid = new_event(app)
    with session_scope(app.sessions) as session:
        campaign, count = invitation_campaign(session, app.settings, app.signer, eid)
        invite_id = campaign.id
        uid = service.get_event(session, eid).uid
    assert count == 3  # the region's active subscribers; Olga is in Oost
    mailer.deliver(invite_id)

    mails = mailer.by_recipient()
    assert set(mails) == {"anna@assen.nl", "bram@emmen.nl", "john@example.org"}
    anna = mails["anna@assen.nl"]
    assert anna["Subject"] == "Uitnodiging: GT Connect regio Noord, dinsdag 13 april"
    text = text_of(anna)
    assert "dinsdag 13 april, 13.30–16.00 uur" in text
    assert "Provinciehuis, Martinikerkhof 12, Groningen" in text
    assert "/r/" in text and "?a=yes" in text and "?a=no" in text and "?a=maybe" in text
    assert mails["john@example.org"]["Subject"] == (
        "Invitation: GT Connect regio Noord, Tuesday 13 April"
    )
    assert "Tuesday 13 April, 1:30–4:00 PM" in text_of(mails["john@example.org"])

    cal = calendar_of(anna)
    assert cal.method.value == "REQUEST"
    vevent = cal.vevent
    assert vevent.uid.value == uid
    assert vevent.sequence.value == "0"
    start = vevent.dtstart.value
    assert start.tzinfo is not None and start.utcoffset() == dt.timedelta(hours=2)
    assert start.astimezone(AMS).replace(tzinfo=None) == dt.datetime(2027, 4, 13, 13, 30)
    assert vevent.dtend.value.astimezone(AMS).hour == 16
    assert vevent.location.value == "Provinciehuis, Martinikerkhof 12, Groningen"
    assert "Stand van zaken" in vevent.description.value
    assert vevent.url.value == "https://meet.gt.example.nl/noord"
    # The organizer is Anna's own signed reply address: her calendar's answer comes back to us.
    assert app.signer.parse_reply_address(vevent.organizer.value) == (
        ids["anna@assen.nl"], eid
    )
    assert vevent.organizer.value.endswith("@" + app.settings.sender.bounce_domain)
    assert vevent.organizer.params["CN"] == [app.settings.sender.name]
    assert vevent.attendee.value == "mailto:anna@assen.nl"
    assert vevent.attendee.params["PARTSTAT"] == ["NEEDS-ACTION"]
    assert vevent.attendee.params["RSVP"] == ["TRUE"]
    assert len(cal.contents["vevent"][0].contents["attendee"]) == 1
    # Outlook reads the daylight-saving rules from RRULEs.
    assert "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU" in cal.serialize()
    assert cal.vtimezone.tzid.value == "Europe/Amsterdam"

    # Anna comes, Bram declines, John does not answer.
    with session_scope(app.sessions) as session:
        service.rsvp(session, app.settings, eid, ids["anna@assen.nl"], "yes", now=NOW)
        service.rsvp(session, app.settings, eid, ids["bram@emmen.nl"], "no", now=NOW)
    mailer.clear()

    # A new time: an update to everyone invited who has not declined, SEQUENCE 1, same UID.
    with session_scope(app.sessions) as session:
        change = service.edit_event(
            session, app.settings, eid,
            {"starts_at": parse_local("2027-04-13 14:00", app.settings.timezone),
             "ends_at": parse_local("2027-04-13 16:30", app.settings.timezone)},
            now=NOW, signer=app.signer,
        )
        assert change.campaign_id is not None
        update_id = change.campaign_id
        to = set(session.scalars(select(Delivery.email).where(Delivery.campaign_id == update_id)))
    assert to == {"anna@assen.nl", "john@example.org"}
    mailer.deliver(update_id)
    mails = mailer.by_recipient()
    assert set(mails) == {"anna@assen.nl", "john@example.org"}
    assert mails["anna@assen.nl"]["Subject"] == (
        "Gewijzigd: GT Connect regio Noord, dinsdag 13 april"
    )
    assert "14.00–16.30 uur" in text_of(mails["anna@assen.nl"])
    cal = calendar_of(mails["anna@assen.nl"])
    assert cal.method.value == "REQUEST"
    assert cal.vevent.uid.value == uid and cal.vevent.sequence.value == "1"
    assert cal.vevent.dtstart.value.astimezone(AMS).hour == 14
    mailer.clear()

    # Cancelled: METHOD:CANCEL with the same UID and a higher SEQUENCE.
    with session_scope(app.sessions) as session:
        change = service.cancel_event(session, app.settings, eid, now=NOW,
                                        signer=app.signer)
        assert change.campaign_id is not None
        cancel_id = change.campaign_id
    mailer.deliver(cancel_id)
    mails = mailer.by_recipient()
    assert set(mails) == {"anna@assen.nl", "john@example.org"}
    assert mails["john@example.org"]["Subject"] == (
        "Cancelled: GT Connect regio Noord, Tuesday 13 April"
    )
    cal = calendar_of(mails["anna@assen.nl"], "CANCEL")
    assert cal.method.value == "CANCEL"
    assert cal.vevent.uid.value == uid and cal.vevent.sequence.value == "2"
    assert cal.vevent.status.value == "CANCELLED"


def test_confirmation_waiting_list_and_seat_mails(mailer: Mailer) -> None:
    app = mailer.app
    ids = people(app, ("anna@assen.nl", "Noord", "nl"), ("john@example.org", "Noord", "en"))
    eid = new_event(app, capacity=1, starts_at=parse_local("2099-04-13 13:30", "Europe/Amsterdam"),
                    ends_at=parse_local("2099-04-13 16:00", "Europe/Amsterdam"))
    with session_scope(app.sessions) as session:
        service.rsvp(session, app.settings, eid, ids["anna@assen.nl"], "yes")
        service.rsvp(session, app.settings, eid, ids["john@example.org"], "yes")
        uid = service.get_event(session, eid).uid
    report = send_owed_mail(app)
    assert (report.sent, report.failed, report.skipped) == (2, 0, 0)
    mails = mailer.by_recipient()
    anna = mails["anna@assen.nl"]
    assert anna["Subject"] == "Aangemeld: GT Connect regio Noord, maandag 13 april"
    assert anna["Auto-Submitted"] == "auto-generated"
    cal = calendar_of(anna)
    assert cal.method.value == "REQUEST" and cal.vevent.uid.value == uid
    assert cal.vevent.attendee.value == "mailto:anna@assen.nl"
    assert cal.vevent.attendee.params["PARTSTAT"] == ["ACCEPTED"]  # she said yes
    john = mails["john@example.org"]
    assert john["Subject"] == "Waiting list: GT Connect regio Noord, Monday 13 April"
    assert "(number 1)" in text_of(john)
    assert not [p for p in john.iter_attachments()]
    assert send_owed_mail(app).sent == 0  # nothing is sent twice
    mailer.clear()

    # Anna cannot come after all: John gets her seat, and a mail with the calendar file.
    with session_scope(app.sessions) as session:
        outcome = service.rsvp(session, app.settings, eid, ids["anna@assen.nl"], "no")
    assert outcome.promoted == (ids["john@example.org"],)
    assert send_owed_mail(app, event_id=eid).sent == 1
    (seat,) = mailer.mails()
    assert seat["To"].addresses[0].addr_spec == "john@example.org"
    assert seat["Subject"] == "A seat for you: GT Connect regio Noord, Monday 13 April"
    assert calendar_of(seat).vevent.uid.value == uid


def test_reminders_are_sent_once_and_move_with_the_meeting(mailer: Mailer) -> None:
    app = mailer.app
    ids = people(app, ("anna@assen.nl", "Noord", "nl"), ("bram@emmen.nl", "Noord", "nl"),
                 ("cor@hoogeveen.nl", "Noord", "nl"))
    eid = new_event(app)
    with session_scope(app.sessions) as session:
        for address in ids:
            service.rsvp(session, app.settings, eid, ids[address], "yes", now=NOW)
        event = service.get_event(session, eid)
        start = event.starts_at
        # Cor unsubscribes from everything: he is not reminded.
        subscribers.unsubscribe(session, "cor@hoogeveen.nl")
    send_owed_mail(app, now=NOW)  # the confirmations
    mailer.clear()

    assert run_due_work(app, now=start - dt.timedelta(days=8))[0] == 0
    queued, report = run_due_work(app, now=start - dt.timedelta(days=7))
    assert queued == 3 and report.sent == 2 and report.skipped == 1
    subjects = {m["To"].addresses[0].addr_spec: m["Subject"] for m in mailer.mails()}
    assert subjects == {
        "anna@assen.nl": "Herinnering: GT Connect regio Noord, dinsdag 13 april",
        "bram@emmen.nl": "Herinnering: GT Connect regio Noord, dinsdag 13 april",
    }
    reminder = mailer.mails()[0]
    assert reminder["List-Unsubscribe"]
    assert calendar_of(reminder).vevent.sequence.value == "0"
    # Another round, or a restarted service, sends nothing again.
    assert run_due_work(app, now=start - dt.timedelta(days=6))[1].sent == 0
    mailer.clear()

    # The meeting moves a week later: the one-day reminder follows the new time.
    with session_scope(app.sessions) as session:
        service.edit_event(
            session, app.settings, eid,
            {"starts_at": start + dt.timedelta(days=7),
             "ends_at": event.ends_at + dt.timedelta(days=7)},
            now=NOW, announce=False,
        )
    assert run_due_work(app, now=start - dt.timedelta(hours=23))[1].sent == 0
    queued, report = run_due_work(app, now=start + dt.timedelta(days=6, hours=1))
    assert report.sent == 2
    assert all("dinsdag 20 april" in m["Subject"] for m in mailer.mails())
    assert calendar_of(mailer.mails()[0]).vevent.sequence.value == "1"


def test_a_meeting_on_the_daylight_saving_night(mailer: Mailer) -> None:
    """28 March 2027: 02:00 becomes 03:00. A meeting from 01:30 to 04:00 lasts 1.5 hours."""
    app = mailer.app
    ids = people(app, ("anna@assen.nl", "Noord", "nl"))
    zone = app.settings.timezone
    eid = new_event(app, starts_at=parse_local("2027-03-28 01:30", zone),
                    ends_at=parse_local("2027-03-28 04:00", zone))
    with session_scope(app.sessions) as session:
        service.rsvp(session, app.settings, eid, ids["anna@assen.nl"], "yes", now=NOW)
    send_owed_mail(app, now=NOW)
    (mail,) = mailer.mails()
    assert "zondag 28 maart, 01.30–04.00 uur" in text_of(mail)
    vevent = calendar_of(mail).vevent
    start, end = vevent.dtstart.value, vevent.dtend.value
    assert start.astimezone(dt.UTC) == dt.datetime(2027, 3, 28, 0, 30, tzinfo=dt.UTC)
    assert end.astimezone(dt.UTC) == dt.datetime(2027, 3, 28, 2, 0, tzinfo=dt.UTC)
    # (Subtract in UTC: Python subtracts two times of one tzinfo as wall-clock times.)
    assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(minutes=90)
    assert start.utcoffset() == dt.timedelta(hours=1)
    assert end.utcoffset() == dt.timedelta(hours=2)


def test_one_nudge_to_invitees_who_did_not_answer(mailer: Mailer) -> None:
    import dataclasses

    app = mailer.app
    settings = dataclasses.replace(
        app.settings, events=dataclasses.replace(app.settings.events, nudge_hours=72)
    )
    nudging = app.reconfigured(settings)
    ids = people(app, ("anna@assen.nl", "Noord", "nl"), ("bram@emmen.nl", "Noord", "nl"),
                 ("cor@hoogeveen.nl", "Noord", "nl"))
    eid = new_event(app, rsvp_deadline=parse_local("2027-04-06 17:00", "Europe/Amsterdam"))
    with session_scope(app.sessions) as session:
        campaign, _ = invitation_campaign(session, app.settings, app.signer, eid, now=NOW)
        campaign_id = campaign.id
        deadline = service.get_event(session, eid).answers_until
    mailer.deliver(campaign_id)
    with session_scope(app.sessions) as session:
        service.rsvp(session, app.settings, eid, ids["anna@assen.nl"], "no", now=NOW)
    send_owed_mail(app, now=NOW)
    mailer.clear()

    assert run_due_work(nudging, now=deadline - dt.timedelta(hours=73))[0] == 0
    queued, report = run_due_work(nudging, now=deadline - dt.timedelta(hours=71))
    assert (queued, report.sent) == (2, 2)
    nudges = mailer.by_recipient()
    assert set(nudges) == {"bram@emmen.nl", "cor@hoogeveen.nl"}
    assert nudges["bram@emmen.nl"]["Subject"] == (
        "Komt u ook? GT Connect regio Noord, dinsdag 13 april"
    )
    assert "?a=yes" in text_of(nudges["bram@emmen.nl"])
    assert run_due_work(nudging, now=deadline - dt.timedelta(hours=1))[0] == 0  # only once
    # After the deadline there is nothing to nudge.
    assert run_due_work(nudging, now=deadline + dt.timedelta(hours=1))[0] == 0


def test_an_unreachable_relay_loses_nothing(mailer: Mailer) -> None:
    import dataclasses

    from mailer.delivery.capture import free_port

    app = mailer.app
    down = dataclasses.replace(
        app.settings, smtp=dataclasses.replace(app.settings.smtp, port=free_port())
    )
    offline = app.reconfigured(down)
    ids = people(app, ("anna@assen.nl", "Noord", "nl"), ("bram@emmen.nl", "Noord", "nl"))
    eid = new_event(app, starts_at=parse_local("2099-04-13 13:30", "Europe/Amsterdam"),
                    ends_at=parse_local("2099-04-13 16:00", "Europe/Amsterdam"))
    with session_scope(app.sessions) as session:
        for person in ids.values():
            service.rsvp(session, app.settings, eid, person, "yes")
    for _round in range(6):  # more rounds than MAX_ATTEMPTS: an outage fails nothing
        report = send_owed_mail(offline)
        assert (report.sent, report.failed, report.retry) == (0, 0, 2)
        assert "cannot connect" in report.errors[0]
    assert send_owed_mail(app).sent == 2
    assert set(mailer.by_recipient()) == {"anna@assen.nl", "bram@emmen.nl"}


def test_the_service_sends_due_reminders_once_across_restarts(mailer: Mailer) -> None:
    """`mailer run`'s scheduler calls the events' due work on every poll; a restarted service
    (a new Service on the same database) finds nothing left to send."""
    from mailer.service.scheduler import Service

    app = mailer.app
    ids = people(app, ("anna@assen.nl", "Noord", "nl"))
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)
    eid = new_event(app, starts_at=soon, ends_at=soon + dt.timedelta(hours=2))
    with session_scope(app.sessions) as session:
        service.rsvp(session, app.settings, eid, ids["anna@assen.nl"], "yes",
                     now=soon - dt.timedelta(days=10))
    Service(app).start_due()
    subjects = [m["Subject"] for m in mailer.mails()]
    assert len(subjects) == 2  # the confirmation, and the (one-week) reminder now due
    assert sum(s.startswith("Herinnering:") for s in subjects) == 1
    Service(app).start_due()  # after a restart
    assert len(mailer.mails()) == 2


def test_meeting_mail_and_newsletters_share_the_relay_limit(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exchange Online counts per mailbox: meeting mail counts against the same per-minute
    limit as campaign deliveries, both ways, and what does not fit waits for a later round."""
    server = CaptureServer(tmp_path / "outbox")
    monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
    with server:
        settings = load_settings()
        app = build_app(dataclasses.replace(
            settings, smtp=dataclasses.replace(settings.smtp, rate_per_minute=3)
        ))
        try:
            ids = people(app, *((f"p{i}@assen.nl", "Noord", "nl") for i in range(4)))
            far = parse_local("2099-04-13 13:30", "Europe/Amsterdam")
            eid = new_event(app, starts_at=far, ends_at=far + dt.timedelta(hours=2))
            now = dt.datetime.now(dt.UTC)
            with session_scope(app.sessions) as session:
                campaign, count = invitation_campaign(session, app.settings, app.signer, eid)
                assert count == 4
                # Three invitations went out this minute: the limit is used up.
                queued = session.scalars(select(Delivery.id)
                                         .where(Delivery.campaign_id == campaign.id)).all()
                campaign_queries.mark_sent(session, sorted(queued)[:3], now)
                service.rsvp(session, app.settings, eid, ids["p0@assen.nl"], "yes")
            report = send_owed_mail(app, now=now)
            assert (report.sent, report.failed) == (0, 0)  # owed, not lost
            assert not list(server.folder.glob("*.eml"))

            later = now + dt.timedelta(minutes=2)
            assert send_owed_mail(app, now=later).sent == 1
            # ...and that confirmation leaves two of the three slots for newsletters.
            with session_scope(app.sessions) as session:
                assert RelayBudget(app.settings.smtp).room(session, later, 10) == (2, 0.0)
        finally:
            app.close()
