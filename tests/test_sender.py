"""The one sender for one-off mail, on both backends, against a real SMTP server on loopback:
pooled and reused connections, a dropped idle connection reconnected, the engine's backoff and
delivery deadline for a 4xx, the outbox surviving a relay outage, the shared relay budget, and
`campaigns test` answering with a clear result."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_support import content_file, make_audience, relay_app, set_config
from smtp_support import SmtpServer
from sqlalchemy import select, update

from mailer.app import App
from mailer.database.connect import session_scope
from mailer.delivery.capture import free_port
from mailer.delivery.models import OutboxMail
from mailer.delivery.relay_budget import RelayBudget
from mailer.delivery.sender import Message
from mailer.events import service as events
from mailer.events.dates import parse_local
from mailer.events.models import EventMail
from mailer.settings import load_settings
from mailer.usecases.meeting_mail import send_owed_mail
from mailer.usecases.outbox import due_work as outbox_due_work
from mailer.usecases.outbox import purge_old
from mailer.usecases.privacy import erase_person
from mailer.web.mail import CONFIRM, Mail, send_mail
from subscribers import service as subscribers
from subscribers.service import SubscriberData

FROM = "nieuwsbrief@gt.example.nl"
NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)


def _message(to: str, n: int = 0) -> Message:
    body = (f"From: {FROM}\r\nTo: {to}\r\nSubject: test {n}\r\n\r\nHallo.\r\n").encode()
    return Message(FROM, to, body)


@pytest.fixture
def relay(env: dict[str, str]) -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailer(relay: SmtpServer) -> Iterator[App]:
    app = relay_app(load_settings(), relay.port)
    yield app
    app.close()


def _outbox(app: App) -> list[OutboxMail]:
    with app.sessions() as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def _queue(app: App, *messages: Message, subscriber_id: int | None = None) -> list[int]:
    with session_scope(app.sessions) as session:
        return app.sender.queue(session, "test", list(messages), subscriber_id=subscriber_id)


def test_one_off_mail_reuses_the_pooled_connections(mailer: App, relay: SmtpServer) -> None:
    _queue(mailer, *(_message(f"p{n}@assen.nl", n) for n in range(6)))
    report = mailer.sender.deliver_outbox()
    assert (report.sent, report.failed, report.retry) == (6, 0, 0)
    opened = len(relay.connections)
    assert 1 <= opened <= mailer.sender.pool_size  # not one connection per message
    for n in range(3):  # later calls, e.g. one confirmation after another
        assert mailer.sender.send_now("test", _message(f"later{n}@assen.nl", n)) == ("sent", "")
    assert len(relay.connections) == opened
    assert sum(relay.rcpts().values()) == 9
    assert all(row.status == "sent" and row.data is None for row in _outbox(mailer))


def test_an_idle_connection_the_relay_dropped_is_reconnected_not_failed(
    mailer: App, relay: SmtpServer
) -> None:
    assert mailer.sender.send_now("test", _message("anna@assen.nl")) == ("sent", "")
    assert relay.drop_connections() == 1  # the relay closes the idle connection
    assert mailer.sender.send_now("test", _message("bram@emmen.nl")) == ("sent", "")
    assert relay.rcpts() == {"anna@assen.nl": 1, "bram@emmen.nl": 1}
    assert len(relay.connections) == 2


def _confirmation_owed(app: App, address: str) -> int:
    with session_scope(app.sessions) as session:
        person = subscribers.add_subscriber(
            session, SubscriberData(email=address, name="Anna", region="Noord")
        )
        zone = app.settings.timezone
        event = events.create_event(session, app.settings, events.EventFields(
            title="GT Connect regio Noord", region="Noord",
            starts_at=parse_local("2099-04-13 13:30", zone),
            ends_at=parse_local("2099-04-13 16:00", zone),
            venue="Provinciehuis", address="Martinikerkhof 12", online_url="", description="",
        ), now=NOW)
        events.rsvp(session, app.settings, event.id, person.id, "yes", now=NOW)
        return event.id


def _meeting_mail(app: App, event_id: int) -> tuple[str, int, dt.datetime | None]:
    with app.sessions() as session:
        (mail,) = session.scalars(select(EventMail).where(EventMail.event_id == event_id))
        return mail.status, mail.attempts, mail.next_attempt_at


def test_a_deferred_meeting_mail_is_retried_with_backoff_until_the_deadline(
    mailer: App, relay: SmtpServer
) -> None:
    """A 4xx is tried again after 60 s, 120 s, 240 s... (the engine's rule), far more than the
    five quick tries of before, and fails only once the delivery deadline (48 h) has passed."""
    event_id = _confirmation_owed(mailer, "anna@assen.nl")
    relay.behaviour.rcpt_replies["anna@assen.nl"] = [(451, "4.7.1 try again later")] * 8
    now = NOW
    for attempt in range(7):
        report = send_owed_mail(mailer, now=now)
        assert (report.sent, report.failed, report.retry) == (0, 0, 1), attempt
        status, attempts, next_at = _meeting_mail(mailer, event_id)
        wait = dt.timedelta(seconds=min(60 * 2**attempt, 3600))  # doubling, at most an hour
        assert (status, attempts, next_at) == ("pending", attempt + 1, now + wait)
        # Not before its time:
        assert send_owed_mail(mailer, now=now + wait - dt.timedelta(seconds=1)).retry == 0
        now += wait
    assert relay.rcpts() == {}
    # The next wait (an hour, the most) would end past first try + 48 h: the mail fails.
    late = NOW + dt.timedelta(hours=47, minutes=30)
    report = send_owed_mail(mailer, now=late)
    assert (report.sent, report.failed) == (0, 1)
    assert "retry deadline passed" in report.errors[0]
    assert _meeting_mail(mailer, event_id)[0] == "failed"


def test_a_deferred_meeting_mail_goes_out_when_the_relay_takes_it(
    mailer: App, relay: SmtpServer
) -> None:
    event_id = _confirmation_owed(mailer, "anna@assen.nl")
    relay.behaviour.rcpt_replies["anna@assen.nl"] = [(452, "4.2.2 mailbox busy")]
    assert send_owed_mail(mailer, now=NOW).retry == 1
    assert send_owed_mail(mailer, now=NOW + dt.timedelta(seconds=61)).sent == 1
    assert _meeting_mail(mailer, event_id)[0] == "sent"
    assert relay.rcpts() == {"anna@assen.nl": 1}


def test_a_page_mail_the_relay_defers_waits_in_the_outbox_for_the_service(
    mailer: App, relay: SmtpServer
) -> None:
    with session_scope(mailer.sessions) as session:
        person = subscribers.add_subscriber(session, SubscriberData(email="anna@assen.nl"))
        person_id = person.id
    relay.behaviour.rcpt_replies["anna@assen.nl"] = [(421, "4.3.2 not now")]
    mail = Mail(CONFIRM, to="anna@assen.nl", language="nl", subscriber_id=person_id,
                context={"name": "Anna", "list_names": ["Nieuwsbrief"],
                         "confirm_url": "https://gt.example.nl/c/x", "valid_hours": 48})
    send_mail(mailer, mail)
    (row,) = _outbox(mailer)
    assert (row.kind, row.status, row.attempts, row.subscriber_id) == (
        CONFIRM, "pending", 1, person_id)
    assert row.data and row.next_attempt_at is not None
    outbox_due_work(mailer, row.next_attempt_at - dt.timedelta(seconds=1))
    assert relay.rcpts() == {}  # not before its time
    assert outbox_due_work in mailer.due_work()  # `mailer run` calls it on every poll
    outbox_due_work(mailer, row.next_attempt_at)
    assert relay.rcpts() == {"anna@assen.nl": 1}
    (row,) = _outbox(mailer)
    assert (row.status, row.data) == ("sent", None)  # the message bytes are not kept


def test_a_refused_address_fails_at_once_and_keeps_no_copy(mailer: App, relay: SmtpServer
                                                          ) -> None:
    relay.behaviour.rcpt_replies["weg@assen.nl"] = [(550, "5.1.1 no such user")]
    _queue(mailer, _message("weg@assen.nl"), _message("anna@assen.nl"))
    report = mailer.sender.deliver_outbox()
    assert (report.sent, report.failed, report.retry) == (1, 1, 0)
    refused, sent = _outbox(mailer)
    assert (refused.status, refused.data) == ("failed", None)
    assert refused.last_error.startswith("550 5.1.1")
    assert sent.status == "sent"


def test_an_unreachable_relay_leaves_one_off_mail_owed_and_untried(env: dict[str, str],
                                                                  relay: SmtpServer) -> None:
    settings = load_settings()
    down = relay_app(settings, free_port())
    try:
        _queue(down, _message("anna@assen.nl"), _message("bram@emmen.nl"))
        for _round in range(6):  # an outage fails nothing, however long it lasts
            report = down.sender.deliver_outbox()
            assert (report.sent, report.failed, report.released) == (0, 0, 2)
            assert "cannot connect" in report.errors[0]
        assert all((r.status, r.attempts) == ("pending", 0) for r in _outbox(down))
    finally:
        down.close()
    back = relay_app(settings, relay.port)
    try:
        assert back.sender.deliver_due().sent == 2
    finally:
        back.close()
    assert relay.rcpts() == {"anna@assen.nl": 1, "bram@emmen.nl": 1}


def test_one_off_mail_counts_against_the_relay_budget(env: dict[str, str], relay: SmtpServer
                                                     ) -> None:
    app = relay_app(load_settings(), relay.port, rate_per_minute=2)
    try:
        assert app.sender.send_now("test", _message("a@assen.nl")) == ("sent", "")
        assert app.sender.send_now("test", _message("b@assen.nl")) == ("sent", "")
        now = dt.datetime.now(dt.UTC)
        with session_scope(app.sessions) as session:  # newsletters see the limit used up
            room, wait = RelayBudget(app.settings.smtp).room(session, now, 10)
        assert room == 0 and wait > 0
        _queue(app, _message("c@assen.nl"))
        report = app.sender.deliver_outbox(now=now)
        assert report.sent == 0 and report.budget_wait > 0
        assert _outbox(app)[-1].status == "pending"  # owed, for when the minute has passed
        assert app.sender.deliver_outbox(now=now + dt.timedelta(minutes=2)).sent == 1
    finally:
        app.close()
    assert sum(relay.rcpts().values()) == 3


def test_the_daily_purge_forgets_outbox_rows_long_done_and_keeps_what_is_owed(
    mailer: App, relay: SmtpServer
) -> None:
    assert mailer.settings.delivery.outbox_retention_days == 30
    relay.behaviour.rcpt_replies["weg@assen.nl"] = [(550, "5.1.1 no such user")]
    relay.behaviour.rcpt_replies["later@assen.nl"] = [(451, "4.3.0 not now")]
    old, recent = NOW - dt.timedelta(days=31), NOW - dt.timedelta(days=29)
    ids = _queue(mailer, *(_message(f"{name}@assen.nl") for name in ("oud", "weg", "later")))
    _queue(mailer, _message("nooit@assen.nl"))  # owed, never tried: stays however old
    with session_scope(mailer.sessions) as session:
        session.execute(update(OutboxMail).values(created_at=old))
    assert mailer.sender.deliver_outbox(ids=ids, now=old).sent == 1
    fresh = _queue(mailer, _message("recent@assen.nl"))
    with session_scope(mailer.sessions) as session:
        session.execute(update(OutboxMail).where(OutboxMail.created_at > old)
                        .values(created_at=recent))
    assert mailer.sender.deliver_outbox(ids=fresh, now=recent).sent == 1
    before = {r.recipient: r.status for r in _outbox(mailer)}
    assert before == {"oud@assen.nl": "sent", "weg@assen.nl": "failed",
                      "later@assen.nl": "pending", "nooit@assen.nl": "pending",
                      "recent@assen.nl": "sent"}

    # Sent or failed more than 30 days ago: gone. Owed (a retry, never tried), or recent: kept.
    assert purge_old(mailer, NOW) == 2
    assert {r.recipient for r in _outbox(mailer)} == {"later@assen.nl", "nooit@assen.nl",
                                                      "recent@assen.nl"}
    assert purge_old(mailer, NOW) == 0
    assert purge_old(mailer, NOW + dt.timedelta(days=2)) == 1  # the recent one's turn


def test_mailer_runs_purge_part_forgets_the_outbox_rows_long_done(mailer: App) -> None:
    import asyncio

    from mailer.service.purge import purge_part

    assert purge_part in mailer.service_parts()  # `mailer run` starts it
    _queue(mailer, _message("oud@assen.nl"), _message("nooit@assen.nl"))
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    with session_scope(mailer.sessions) as session:
        session.execute(update(OutboxMail).values(created_at=long_ago))
        session.execute(update(OutboxMail).where(OutboxMail.recipient == "oud@assen.nl")
                        .values(status="sent", sent_at=long_ago, data=None))

    async def run_until_purged() -> None:
        stop = asyncio.Event()
        part = asyncio.create_task(purge_part(mailer, stop))
        while len(await asyncio.to_thread(_outbox, mailer)) == 2:
            await asyncio.sleep(0.05)  # polling the condition the part's first round makes
        stop.set()
        await asyncio.wait_for(part, 10)

    asyncio.run(asyncio.wait_for(run_until_purged(), 30))
    assert [r.recipient for r in _outbox(mailer)] == ["nooit@assen.nl"]


def test_outbox_retention_below_the_budget_window_is_refused(config_file: Path,
                                                            env: dict[str, str]) -> None:
    from mailer.errors import ConfigError

    set_config(config_file, delivery__outbox_retention_days=1)
    with pytest.raises(ConfigError, match=r"delivery\.outbox_retention_days: must be at least 2"):
        load_settings()


def test_erasure_drops_one_off_mail_owed_to_the_person(mailer: App) -> None:
    with session_scope(mailer.sessions) as session:
        person = subscribers.add_subscriber(session, SubscriberData(email="anna@assen.nl"))
        person_id = person.id
    _queue(mailer, _message("anna@assen.nl"), subscriber_id=person_id)
    _queue(mailer, _message("redactie@gt.example.nl"))
    with session_scope(mailer.sessions) as session:
        erase_person(session, "anna@assen.nl")
    assert [row.recipient for row in _outbox(mailer)] == ["redactie@gt.example.nl"]


@pytest.fixture
def campaign(run_cli, relay: SmtpServer, config_file: Path, tmp_path: Path) -> str:
    set_config(config_file, smtp__port=relay.port)
    app = relay_app(load_settings(), relay.port)
    try:
        (person,) = make_audience(app.sessions, 1)
    finally:
        app.close()
    run_cli("campaigns", "create", "--content", str(content_file(tmp_path)),
            "--list", "nieuwsbrief")
    return person  # test copies are personalised as this subscriber


def test_campaigns_test_says_what_the_relay_did(run_cli, campaign: str, relay: SmtpServer,
                                                config_file: Path) -> None:
    def test(to: str, ok: bool = True):
        return run_cli("campaigns", "test", "1", "--to", to, "--subscriber", campaign, ok=ok)

    out = test("redactie@gt.example.nl").output
    assert out.strip() == (
        f"Sent a test of campaign 1 to redactie@gt.example.nl (personalised as {campaign}).")

    relay.behaviour.rcpt_replies["later@gt.example.nl"] = [(451, "4.7.1 greylisted")]
    out = test("later@gt.example.nl").output
    assert out.startswith("The relay deferred the test of campaign 1 to later@gt.example.nl "
                          f"(personalised as {campaign}) (451 4.7.1 greylisted)")

    relay.behaviour.rcpt_replies["weg@gt.example.nl"] = [(550, "5.1.1 unknown")]
    refused = test("weg@gt.example.nl", ok=False)
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        f"Error: SMTP 127.0.0.1:{relay.port} did not take the message for weg@gt.example.nl: "
        "550 5.1.1 unknown"
    ]

    set_config(config_file, smtp__port=free_port())
    down = test("redactie@gt.example.nl", ok=False)
    assert down.exit_code == 1
    (line,) = down.output.strip().splitlines()
    assert line.startswith("Error: ") and "cannot connect" in line
    # Nothing left owed that would surprise someone later: the failed test is recorded failed.
    app = relay_app(load_settings(), relay.port)
    try:
        statuses = [(r.recipient, r.status) for r in _outbox(app)]
    finally:
        app.close()
    assert statuses == [("redactie@gt.example.nl", "sent"), ("later@gt.example.nl", "pending"),
                        ("weg@gt.example.nl", "failed"), ("redactie@gt.example.nl", "failed")]
