"""The delivery engine against a real SMTP server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_support import create_campaign, deliver, make_audience, relay_app, start, status
from smtp_support import SmtpServer
from sqlalchemy import select

from mailer.app import App
from mailer.campaigns.models import Delivery
from mailer.database.connect import session_scope
from mailer.delivery.capture import free_port
from mailer.delivery.engine import DeliveryEngine
from mailer.delivery.models import OutboxMail
from mailer.delivery.retry import retry_time
from mailer.delivery.sender import Message
from mailer.settings import Settings
from subscribers import service as subscribers


@pytest.fixture
def relay() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mail_app(settings: Settings, relay: SmtpServer) -> Iterator[App]:
    app = relay_app(settings, relay.port, retry_base_seconds=0.05, batch_size=7)
    yield app
    app.close()


def test_each_recipient_gets_one_personal_message(mail_app, relay, tmp_path: Path):
    emails = make_audience(mail_app.sessions, 30)
    campaign_id = create_campaign(mail_app, tmp_path)
    assert start(mail_app, campaign_id) == 30
    stats = deliver(mail_app)
    assert stats.sent == 30
    assert relay.rcpts() == {e: 1 for e in emails}
    by_rcpt = {r.rcpt: r for r in relay.received}
    assert b"Beste Persoon 3," in by_rcpt["p00003@gemeente3.example.nl"].data
    # Envelope senders are VERP addresses naming each delivery.
    with session_scope(mail_app.sessions) as session:
        ids = dict(session.execute(select(Delivery.email, Delivery.id)).all())
    for rcpt, received in by_rcpt.items():
        assert mail_app.signer.parse_verp(received.mail_from) == ids[rcpt]
    info = status(mail_app, campaign_id)
    assert info["status"] == "finished"
    assert (info["sent"], info["queued"], info["sending"]) == (30, 0, 0)
    # Nothing more to do: a second run sends nothing again.
    assert deliver(mail_app).sent == 0
    assert len(relay.received) == 30


def test_people_who_leave_after_the_snapshot_are_skipped(mail_app, relay, tmp_path: Path):
    emails = make_audience(mail_app.sessions, 6)
    campaign_id = create_campaign(mail_app, tmp_path)
    start(mail_app, campaign_id)
    with session_scope(mail_app.sessions) as session:
        subscribers.unsubscribe(session, emails[0], "nieuwsbrief")
        subscribers.suppress(session, emails[1], "manual")
    stats = deliver(mail_app)
    assert stats.sent == 4 and stats.skipped == 2
    assert set(relay.rcpts()) == set(emails[2:])
    assert status(mail_app, campaign_id)["skipped"] == 2


def test_4xx_is_retried_then_delivered(mail_app, relay, tmp_path: Path):
    emails = make_audience(mail_app.sessions, 3)
    relay.behaviour.rcpt_replies[emails[0]] = [(451, "try later"), (452, "still busy")]
    campaign_id = create_campaign(mail_app, tmp_path)
    start(mail_app, campaign_id)
    sent = deferred = 0
    # Retries wait for their backoff (0.05 s, then 0.1 s): run until the campaign is done.
    for _ in range(100):
        stats = deliver(mail_app)
        sent, deferred = sent + stats.sent, deferred + stats.deferred
        if status(mail_app, campaign_id)["status"] == "finished":
            break
        asyncio.run(asyncio.sleep(0.05))  # the backoff is time-based by design
    assert (sent, deferred) == (3, 2)
    info = status(mail_app, campaign_id)
    assert info["status"] == "finished" and info["sent"] == 3
    assert relay.rcpts()[emails[0]] == 1
    with session_scope(mail_app.sessions) as session:
        row = session.scalar(select(Delivery).where(Delivery.email == emails[0]))
        assert row is not None and row.attempts == 3 and row.status == "sent"
        assert row.first_attempt_at is not None and row.sent_at >= row.first_attempt_at


def test_4xx_past_the_deadline_fails(settings, relay, tmp_path: Path):
    app = relay_app(settings, relay.port, retry_base_seconds=3600, retry_deadline_hours=0.1)
    try:
        emails = make_audience(app.sessions, 2)
        relay.behaviour.rcpt_replies[emails[0]] = [(450, "mailbox busy")]
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        calls: list[list[tuple[int, int, str]]] = []
        deliver(app, on_permanent_failures=lambda session, failures: calls.append(failures))
        info = status(app, campaign_id)
        assert info["failed"] == 1 and info["sent"] == 1 and info["status"] == "finished"
        assert calls and calls[0][0][1] == 450 and "deadline" in calls[0][0][2]
    finally:
        app.close()


def test_a_4xx_waits_by_the_retry_rule_one_off_mail_follows_too(settings, relay, tmp_path: Path):
    # delivery.retry is the one rule: the engine and the sender defer a 4xx to the same times.
    app = relay_app(settings, relay.port, retry_base_seconds=60, retry_deadline_hours=0.1)
    try:
        (email,) = make_audience(app.sessions, 1)
        # Three tries each, the newsletter's and the one-off mail's to the same address.
        relay.behaviour.rcpt_replies[email] = [(451, "try later")] * 6
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        first = dt.datetime.now(dt.UTC).replace(microsecond=0)
        with session_scope(app.sessions) as session:
            app.sender.queue(session, "test", [Message("nieuwsbrief@gt.example.nl", email,
                                                       b"Subject: x\r\n\r\nHallo.\r\n")])

        def rows() -> tuple[Delivery, OutboxMail]:
            with app.sessions() as session:
                return (session.scalars(select(Delivery)).one(),
                        session.scalars(select(OutboxMail)).one())

        for attempts, now in enumerate((first, first + dt.timedelta(seconds=60))):
            deliver(app, clock=lambda now=now: now)
            app.sender.deliver_outbox(now=now)
            delivery, one_off = rows()
            expected = retry_time(app.settings.delivery, attempts, first, now)
            assert expected is not None
            assert (delivery.status, one_off.status) == ("deferred", "pending")
            assert _aware(delivery.next_attempt_at) == _aware(one_off.next_attempt_at) == expected
            assert delivery.last_error == one_off.last_error == "451 try later"
        # Third try: 240 s more would pass the deadline (6 min after the first): both fail.
        now = first + dt.timedelta(seconds=60 + 120)
        assert retry_time(app.settings.delivery, 2, first, now) is None
        deliver(app, clock=lambda: now)
        app.sender.deliver_outbox(now=now)
        delivery, one_off = rows()
        assert delivery.status == one_off.status == "failed"
        assert delivery.last_error == one_off.last_error == "451 try later (retry deadline passed)"
    finally:
        app.close()


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(tzinfo=dt.UTC) if moment and moment.tzinfo is None else moment


def test_5xx_is_a_recorded_permanent_failure(mail_app, relay, tmp_path: Path):
    emails = make_audience(mail_app.sessions, 4)
    relay.behaviour.rcpt_replies[emails[1]] = [(550, "5.1.1 no such user")]
    relay.behaviour.rcpt_replies[emails[2]] = [(552, "5.2.2 mailbox full")]
    campaign_id = create_campaign(mail_app, tmp_path)
    start(mail_app, campaign_id)
    calls: list[list[tuple[int, int, str]]] = []

    def hook(session, failures):
        assert session.in_transaction()
        calls.append(list(failures))

    stats = deliver(mail_app, on_permanent_failures=hook)
    assert stats.failed == 1
    assert stats.deferred >= 1  # 552 is not permanent (Mailman's rule): retried
    with session_scope(mail_app.sessions) as session:
        full = session.scalar(select(Delivery).where(Delivery.email == emails[2]))
        assert full is not None and full.status in ("deferred", "sent") and full.attempts >= 1
    with session_scope(mail_app.sessions) as session:
        failed = session.scalar(select(Delivery).where(Delivery.email == emails[1]))
        assert failed is not None
        assert failed.status == "failed" and failed.last_code == 550
        assert "no such user" in failed.last_error
    assert [(code, "no such user" in msg) for _id, code, msg in calls[0]] == [(550, True)]
    assert emails[1] not in relay.rcpts()


def test_dropped_connection_is_reconnected(mail_app, relay, tmp_path: Path):
    emails = make_audience(mail_app.sessions, 10)
    relay.behaviour.drop_data = 2
    campaign_id = create_campaign(mail_app, tmp_path)
    start(mail_app, campaign_id)
    for _ in range(20):
        deliver(mail_app)
        if status(mail_app, campaign_id)["status"] == "finished":
            break
    assert relay.rcpts() == {e: 1 for e in emails}
    assert status(mail_app, campaign_id)["status"] == "finished"


def test_repeated_connection_failures_pause_the_campaign(settings, tmp_path: Path):
    dead_port = free_port()  # nothing listens here
    app = relay_app(settings, dead_port, max_connection_failures=3, timeout_seconds=2)
    try:
        make_audience(app.sessions, 5)
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        stats = deliver(app)
        assert stats.sent == 0 and campaign_id in stats.paused
        info = status(app, campaign_id)
        assert info["status"] == "paused"
        assert "3 connection failures" in info["pause_reason"]
        assert f"127.0.0.1:{dead_port}" in info["pause_reason"]
        assert info["queued"] == 5 and info["sending"] == 0
    finally:
        app.close()


def test_rate_limit_holds(settings, relay, tmp_path: Path):
    app = relay_app(settings, relay.port, rate_per_second=10)
    try:
        make_audience(app.sessions, 25)
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        deliver(app)
        times = sorted(r.at for r in relay.received)
        assert len(times) == 25
        # No one-second window on the server's clock holds more than the limit.
        for i, t in enumerate(times):
            in_window = [u for u in times[i:] if u < t + 1.0]
            assert len(in_window) <= 10, f"{len(in_window)} messages within a second"
        with session_scope(app.sessions) as session:
            sent = sorted(session.scalars(select(Delivery.sent_at)))
        assert sent[-1] - sent[0] >= dt.timedelta(seconds=1)
    finally:
        app.close()


def test_lease_expired_rows_are_claimed_again(mail_app, relay, tmp_path: Path):
    emails = make_audience(mail_app.sessions, 3)
    campaign_id = create_campaign(mail_app, tmp_path)
    start(mail_app, campaign_id)
    # A worker that claimed everything and died (its rows stay `sending`).
    dead = DeliveryEngine(mail_app, worker_id="dead")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    dead.clock = lambda: long_ago
    with session_scope(mail_app.sessions) as session:
        from mailer.campaigns import queries

        claimed = queries.claim_batch(session, "dead", 10, long_ago, long_ago)
    assert len(claimed) == 3
    assert deliver(mail_app).sent == 3
    assert relay.rcpts() == {e: 1 for e in emails}


def test_a_campaign_that_no_longer_renders_is_paused(mail_app, relay, tmp_path: Path):
    make_audience(mail_app.sessions, 3)
    campaign_id = create_campaign(mail_app, tmp_path)
    start(mail_app, campaign_id)

    def broken(*_args):
        raise RuntimeError("templates/mail/newsletter.nl.html: line 3: unexpected '}'")

    stats = deliver(mail_app, renderer_factory=broken)
    assert stats.sent == 0
    info = status(mail_app, campaign_id)
    assert info["status"] == "paused" and "line 3" in info["pause_reason"]
    assert info["queued"] == 3 and relay.received == []


def test_5xx_at_send_time_reaches_the_bounce_records(mail_app, relay, tmp_path: Path):
    from mailer.bounces.models import Bounce

    emails = make_audience(mail_app.sessions, 2)
    relay.behaviour.rcpt_replies[emails[0]] = [(550, "5.1.1 user unknown")]
    campaign_id = create_campaign(mail_app, tmp_path)
    start(mail_app, campaign_id)
    hook = mail_app.failure_hook  # the composition root's: the configured bounce policy
    assert hook is not None
    deliver(mail_app, on_permanent_failures=hook)
    with session_scope(mail_app.sessions) as session:
        bounces = list(session.scalars(select(Bounce)))
        delivery_id = session.scalar(select(Delivery.id).where(Delivery.email == emails[0]))
    assert [(b.delivery_id, b.kind) for b in bounces] == [(delivery_id, "hard")]


def test_a_relay_without_pipelining_gets_one_command_at_a_time(settings, tmp_path: Path):
    server = SmtpServer(pipelining=False).start()
    app = relay_app(settings, server.port)
    try:
        emails = make_audience(app.sessions, 5)
        server.behaviour.rcpt_replies[emails[3]] = [(550, "5.1.1 unknown")]
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        stats = deliver(app)
        assert (stats.sent, stats.failed) == (4, 1)
        assert server.rcpts() == {e: 1 for e in emails if e != emails[3]}
        assert status(app, campaign_id)["status"] == "finished"
    finally:
        app.close()
        server.stop()
