"""Answers from calendars: Accept / Tentative / Decline in Outlook, Gmail, Apple Calendar and
Thunderbird, sent to the invitation's ORGANIZER address, arrive through the real bounce
receiver and are recorded as the RSVP page records them; anything that does not add up is
kept for review and changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from ical_support import CLIENTS, calendar_of, client_reply
from sqlalchemy import func, select

from mailer.app import App, build_app
from mailer.bounces.models import Bounce
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.delivery.engine import DeliveryEngine
from mailer.events import service
from mailer.events.announce import invitation_campaign
from mailer.events.dates import parse_local
from mailer.events.models import CalendarReply, Rsvp, RsvpChange
from mailer.intake.receiver import serve
from mailer.settings import load_settings
from subscribers import service as subscribers
from subscribers.service import SubscriberData

ANSWERS = {"ACCEPTED": "yes", "DECLINED": "no", "TENTATIVE": "maybe"}


class Site:
    def __init__(self, app: App, capture: CaptureServer) -> None:
        self.app = app
        self.capture = capture

    def mails(self, to: str) -> list[EmailMessage]:
        found = []
        for path in sorted(self.capture.folder.glob("*.eml")):
            # RFC 6532: the header of a mail to renée@ is UTF-8, read as such.
            msg = email.message_from_string(path.read_bytes().decode("utf-8"),
                                            policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            if msg["To"].addresses[0].addr_spec == to:
                found.append(msg)
        return found

    def person(self, address: str, name: str, language: str = "nl") -> int:
        with session_scope(self.app.sessions) as session:
            return subscribers.add_subscriber(
                session, SubscriberData(email=address, name=name, region="Noord",
                                        language=language)
            ).id

    def event(self, **overrides: Any) -> tuple[int, str]:
        zone = self.app.settings.timezone
        fields = {
            "title": "GT Connect regio Noord", "region": "Noord",
            "starts_at": parse_local("2027-04-13 13:30", zone),
            "ends_at": parse_local("2027-04-13 16:00", zone),
            "venue": "Provinciehuis", "address": "Martinikerkhof 12\nGroningen",
            **overrides,
        }
        with session_scope(self.app.sessions) as session:
            event = service.create_event(session, self.app.settings,
                                         service.EventFields(**fields))
            return event.id, event.uid

    def invite(self, event_id: int) -> None:
        with session_scope(self.app.sessions) as session:
            campaign, _ = invitation_campaign(session, self.app.settings, self.app.signer,
                                              event_id)
            campaign_id = campaign.id
        engine = DeliveryEngine(self.app)
        asyncio.run(engine.run(asyncio.Event(), until_idle=True, campaign_ids=[campaign_id],
                               idle_seconds=0.05))

    def organizer(self, address: str) -> str:
        """The ORGANIZER of the invitation `address` received."""
        (invitation,) = [m for m in self.mails(address) if "itnodiging" in str(m["Subject"])
                         or "Invitation" in str(m["Subject"])]
        return str(calendar_of(invitation).vevent.organizer.value).removeprefix("mailto:")

    def receive(self, *messages: tuple[str, bytes], protocol: str = "smtp") -> None:
        """Deliver (recipient, raw) through the real receiver, as the MTA would."""
        async def scenario() -> None:
            stop = asyncio.Event()
            ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(serve(self.app, stop, host="127.0.0.1", port=0,
                                             protocol=protocol, ready=ready.set_result))
            try:
                port = await asyncio.wait_for(ready, 10)
                async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
                    for rcpt, raw in messages:
                        await smtp.sendmail("anna@assen.nl", [rcpt], raw)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)

        asyncio.run(scenario())

    def answer(self, event_id: int, subscriber_id: int) -> Rsvp | None:
        with session_scope(self.app.sessions) as session:
            row = service.current_answer(session, event_id, subscriber_id)
            if row is not None:
                session.expunge(row)
            return row

    def replies(self) -> list[tuple[str, str, bool | None]]:
        with session_scope(self.app.sessions) as session:
            rows = session.scalars(select(CalendarReply).order_by(CalendarReply.id))
            return [(r.outcome, r.reason, r.token_valid) for r in rows]


@pytest.fixture
def site(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    server = CaptureServer(tmp_path / "outbox")
    monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
    with server:
        app = build_app(load_settings())
        try:
            yield Site(app, server)
        finally:
            app.close()


@pytest.mark.parametrize("client,partstat", [
    ("outlook", "ACCEPTED"), ("gmail", "DECLINED"), ("apple", "TENTATIVE"),
    ("thunderbird", "ACCEPTED"),
])
def test_a_calendar_answer_is_recorded_as_the_rsvp_page_would(
    site: Site, client: str, partstat: str
) -> None:
    anna = site.person("renée@assen.nl", "Renée de Vries")
    event_id, uid = site.event()
    site.invite(event_id)
    organizer = site.organizer("renée@assen.nl")
    raw = client_reply(client, organizer=organizer, attendee="renée@assen.nl",
                       name="Renée de Vries", uid=uid, partstat=partstat)
    site.receive((organizer, raw))

    answer = site.answer(event_id, anna)
    assert answer is not None and answer.answer == ANSWERS[partstat]
    with session_scope(site.app.sessions) as session:
        sources = session.scalars(select(RsvpChange.source)).all()
        assert sources == ["calendar"]
        assert session.scalar(select(func.count()).select_from(Bounce)) == 0
    assert site.replies() == [("recorded", f"answer {ANSWERS[partstat]}", True)]
    confirmations = [m for m in site.mails("renée@assen.nl")
                     if str(m["Subject"]).startswith("Aangemeld")]
    if partstat == "ACCEPTED":
        # The confirmation mail went out at once, her calendar entry marked accepted.
        (confirmation,) = confirmations
        vevent = calendar_of(confirmation).vevent
        assert vevent.attendee.params["PARTSTAT"] == ["ACCEPTED"]
        assert vevent.uid.value == uid
    else:
        assert confirmations == []


def test_a_yes_from_the_calendar_waits_when_the_meeting_is_full(site: Site) -> None:
    bram = site.person("bram@emmen.nl", "Bram")
    anna = site.person("anna@assen.nl", "Anna")
    event_id, uid = site.event(capacity=1)
    with session_scope(site.app.sessions) as session:
        service.rsvp(session, site.app.settings, event_id, bram, "yes")
    organizer = service.reply_address(site.app.settings, site.app.signer, anna, event_id)
    raw = client_reply("outlook", organizer=organizer, attendee="anna@assen.nl", name="Anna",
                       uid=uid)
    site.receive((organizer, raw))
    answer = site.answer(event_id, anna)
    assert answer is not None and answer.answer == "yes" and answer.waiting
    (note,) = site.mails("anna@assen.nl")
    assert str(note["Subject"]).startswith("Wachtlijst")
    assert site.replies() == [("recorded", "answer yes (waiting list)", True)]


def _forged(address: str) -> str:
    local, domain = address.split("@")
    mac = local[-16:]
    return local[:-16] + ("a" if mac[0] != "a" else "b") + mac[1:] + "@" + domain


Attack = Callable[[Site, dict[str, Any]], tuple[str, bytes]]


def _no_token(site: Site, v: dict[str, Any]) -> tuple[str, bytes]:
    sender = site.app.settings.sender.address
    bounce = f"bounces@{site.app.settings.sender.bounce_domain}"
    return bounce, client_reply("gmail", organizer=sender, attendee="anna@assen.nl",
                                name="Anna", uid=v["uid"])


def _forged_token(site: Site, v: dict[str, Any]) -> tuple[str, bytes]:
    forged = _forged(v["organizer"])
    return forged, client_reply("gmail", organizer=forged, attendee="anna@assen.nl",
                                name="Anna", uid=v["uid"])


def _token_of_another(site: Site, v: dict[str, Any]) -> tuple[str, bytes]:
    # Bram's valid address, but the reply says Anna answers (or: Anna's reply for Bram).
    return v["bram_organizer"], client_reply("outlook", organizer=v["bram_organizer"],
                                             attendee="anna@assen.nl", name="Anna",
                                             uid=v["uid"])


def _another_meeting(site: Site, v: dict[str, Any]) -> tuple[str, bytes]:
    return v["organizer"], client_reply("thunderbird", organizer=v["organizer"],
                                        attendee="anna@assen.nl", name="Anna",
                                        uid=v["other_uid"])


def _two_attendees(site: Site, v: dict[str, Any]) -> tuple[str, bytes]:
    raw = client_reply("thunderbird", organizer=v["organizer"], attendee="anna@assen.nl",
                       name="Anna", uid=v["uid"])
    extra = b"ATTENDEE;PARTSTAT=ACCEPTED:mailto:bram@emmen.nl\r\nDTSTART;TZID"
    return v["organizer"], raw.replace(b"DTSTART;TZID", extra, 1)


def _future_sequence(site: Site, v: dict[str, Any]) -> tuple[str, bytes]:
    return v["organizer"], client_reply("apple", organizer=v["organizer"],
                                        attendee="anna@assen.nl", name="Anna", uid=v["uid"],
                                        sequence=7)


def _delegated(site: Site, v: dict[str, Any]) -> tuple[str, bytes]:
    return v["organizer"], client_reply("apple", organizer=v["organizer"],
                                        attendee="anna@assen.nl", name="Anna", uid=v["uid"],
                                        partstat="DELEGATED")


@pytest.mark.parametrize("attack,reason,token_valid", [
    (_no_token, "no reply token", None),
    (_forged_token, "the reply address's token is not valid (or two disagree)", False),
    (_token_of_another, "the reply is from another attendee than the one invited", True),
    (_another_meeting, "the reply is about another meeting (UID)", True),
    (_two_attendees, "a REPLY must name one attendee, not 2", True),
    (_future_sequence, "the reply names a version of the meeting we never sent", True),
    (_delegated, "PARTSTAT DELEGATED is not an answer", True),
])
def test_a_reply_that_does_not_add_up_changes_nothing_and_is_kept(
    site: Site, attack: Attack, reason: str, token_valid: bool | None
) -> None:
    anna = site.person("anna@assen.nl", "Anna")
    bram = site.person("bram@emmen.nl", "Bram")
    event_id, uid = site.event()
    _other_id, other_uid = site.event(title="Een andere bijeenkomst")
    values = {
        "uid": uid, "other_uid": other_uid,
        "organizer": service.reply_address(site.app.settings, site.app.signer, anna, event_id),
        "bram_organizer": service.reply_address(site.app.settings, site.app.signer, bram,
                                                event_id),
    }
    site.receive(attack(site, values))
    assert site.answer(event_id, anna) is None and site.answer(event_id, bram) is None
    with session_scope(site.app.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Bounce)) == 0
        (row,) = session.scalars(select(CalendarReply)).all()
        assert (row.raw and b"METHOD:REPLY" in row.raw.replace(b"\r\n ", b"")) or row.raw
    assert site.replies() == [("review", reason, token_valid)]
    assert not list(site.capture.folder.glob("*.eml"))


def test_the_same_reply_twice_is_recorded_once(site: Site) -> None:
    anna = site.person("anna@assen.nl", "Anna")
    event_id, uid = site.event()
    organizer = service.reply_address(site.app.settings, site.app.signer, anna, event_id)
    raw = client_reply("gmail", organizer=organizer, attendee="anna@assen.nl", name="Anna",
                       uid=uid, partstat="DECLINED")
    site.receive((organizer, raw), (organizer, raw))
    assert len(site.replies()) == 1
    with session_scope(site.app.sessions) as session:
        assert session.scalar(select(func.count()).select_from(RsvpChange)) == 1


def test_a_reply_after_the_deadline_is_kept_for_review(site: Site) -> None:
    anna = site.person("anna@assen.nl", "Anna")
    now = dt.datetime.now(dt.UTC)
    event_id, uid = site.event(rsvp_deadline=now + dt.timedelta(seconds=1))
    with session_scope(site.app.sessions) as session:
        # Deadline passed: set it in the past directly (the service refuses a past deadline).
        from mailer.events import queries

        event = queries.event_by_id(session, event_id)
        assert event is not None
        event.rsvp_deadline = now - dt.timedelta(hours=1)
    organizer = service.reply_address(site.app.settings, site.app.signer, anna, event_id)
    site.receive((organizer, client_reply("outlook", organizer=organizer,
                                          attendee="anna@assen.nl", name="Anna", uid=uid)))
    assert site.answer(event_id, anna) is None
    ((outcome, reason, _valid),) = site.replies()
    assert outcome == "review" and "answers closed" in reason


def test_every_client_shape_is_read(site: Site) -> None:
    """The four fixtures parse to the same reply (folded lines, base64, QP, 8bit)."""
    from mailer.events.itip import find_reply

    found = set()
    for client in CLIENTS:
        reply, _msg = find_reply(client_reply(
            client, organizer="rsvp+1-2-abcdefghijklmnop@bounces.gt.example.nl",
            attendee="renée@assen.nl", name="Renée", uid="u@gt.example.nl",
        ))
        assert reply is not None and not reply.problem
        found.add((reply.uid, reply.organizer, reply.attendees))
    assert len(found) == 1


def test_replies_are_listed_for_review(site: Site, run_cli: Any) -> None:
    anna = site.person("anna@assen.nl", "Anna")
    event_id, uid = site.event()
    organizer = service.reply_address(site.app.settings, site.app.signer, anna, event_id)
    site.receive(
        (organizer, client_reply("gmail", organizer=organizer, attendee="anna@assen.nl",
                                 name="Anna", uid=uid)),
        (organizer, client_reply("apple", organizer=_forged(organizer),
                                 attendee="anna@assen.nl", name="Anna", uid=uid)),
    )
    import json

    every = json.loads(run_cli("events", "replies", "--json").output)
    assert [r["outcome"] for r in every] == ["review", "recorded"]
    assert every[1]["client"].startswith("-//Google Inc")
    review = run_cli("events", "replies", "--review").output
    assert "token is not valid" in review and "recorded" not in review


def test_a_reply_through_the_mta_pipe(site: Site, run_cli: Any) -> None:
    """`mailer bounces ingest -` (Postfix pipe) takes calendar replies too."""
    anna = site.person("anna@assen.nl", "Anna")
    event_id, uid = site.event()
    organizer = service.reply_address(site.app.settings, site.app.signer, anna, event_id)
    raw = client_reply("thunderbird", organizer=organizer, attendee="anna@assen.nl",
                       name="Anna", uid=uid, partstat="DECLINED")
    out = run_cli("bounces", "ingest", "-", "--envelope-to", organizer, input=raw).output
    assert "1 calendar-reply" in out
    answer = site.answer(event_id, anna)
    assert answer is not None and answer.answer == "no"


def test_a_reply_from_an_exchange_mailbox_polled_over_imap(site: Site) -> None:
    """Exchange Online: the ORGANIZER address is an alias of the polled mailbox."""
    import dataclasses
    import imaplib

    from conftest import IN_CI
    from imap_support import PASSWORD, USER, PrivateDovecot, usable

    from mailer.intake.imap import poll_once

    problem = usable()
    if problem:
        if IN_CI:
            pytest.fail(f"Dovecot is needed under CI=true: {problem}")
        pytest.skip(problem)
    anna = site.person("anna@assen.nl", "Anna")
    event_id, uid = site.event()
    organizer = service.reply_address(site.app.settings, site.app.signer, anna, event_id)
    with PrivateDovecot() as server:
        conn = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=server.ssl_context())
        conn.login(USER, PASSWORD)
        raw = client_reply("outlook", organizer=organizer, attendee="anna@assen.nl",
                           name="Anna", uid=uid, partstat="TENTATIVE")
        assert conn.append("INBOX", None, None, raw)[0] == "OK"
        conn.logout()
        bounces = dataclasses.replace(
            site.app.settings.bounces, imap_host="127.0.0.1", imap_port=server.port,
            imap_username=USER, imap_password=PASSWORD, imap_processed_folder="Verwerkt",
        )
        polling = site.app.reconfigured(dataclasses.replace(site.app.settings, bounces=bounces))
        summary = poll_once(polling, ssl_context=server.ssl_context())
    assert (summary.processed, summary.failed) == (1, 0)
    answer = site.answer(event_id, anna)
    assert answer is not None and answer.answer == "maybe"
    assert site.replies() == [("recorded", "answer maybe", True)]


def test_a_garbled_calendar_is_kept_and_changes_nothing(site: Site) -> None:
    anna = site.person("anna@assen.nl", "Anna")
    event_id, uid = site.event()
    organizer = service.reply_address(site.app.settings, site.app.signer, anna, event_id)
    raw = client_reply("gmail", organizer=organizer, attendee="anna@assen.nl", name="Anna",
                       uid=uid)
    # Cut the calendar off in the middle of its VEVENT (and the attachment's copy too).
    broken = raw.replace(b"END:VEVENT", b"BEGIN:VALARM").replace(
        b"Content-Transfer-Encoding: base64\r\n\r\n", b"Content-Transfer-Encoding: 7bit\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n\r\n--ignored\r\n")
    site.receive((organizer, broken))
    assert site.answer(event_id, anna) is None
    ((outcome, reason, _valid),) = site.replies()
    assert outcome == "review" and reason.startswith("unreadable calendar")
