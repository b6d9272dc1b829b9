"""Finding 9: the bounce receiver cannot be made to hold unbounded mail.

Replayed against the running receiver on a loopback port: an oversized message is refused with
552 (declared or not), one session more than the cap gets 421, only raw_keep_kib of a stored
message is kept, unmatched mail is forgotten sooner than matched, and the total is capped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import smtplib
from collections.abc import Awaitable, Callable

import pytest
from bounces_support import sample, sent_delivery, verp_for
from sqlalchemy import func, select, update

from mailer.app import App, build_app
from mailer.bounces import service
from mailer.bounces.models import BounceMessage
from mailer.database.connect import session_scope
from mailer.intake.receiver import serve
from subscribers.models import utcnow

LIMIT = 200_000


@pytest.fixture
def small_app(settings) -> App:
    bounces = dataclasses.replace(settings.bounces, receiver_max_bytes=LIMIT,
                                  receiver_max_sessions=2, raw_keep_kib=4)
    built = build_app(dataclasses.replace(settings, bounces=bounces))
    yield built
    built.close()


def _run(app: App, client: Callable[[int], Awaitable[None]]) -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(app, stop, host="127.0.0.1", port=0, protocol="smtp",
                                         ready=ready.set_result))
        try:
            await client(await asyncio.wait_for(ready, 10))
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    asyncio.run(scenario())


def _stored(app: App) -> list[BounceMessage]:
    with session_scope(app.sessions) as session:
        rows = list(session.scalars(select(BounceMessage).order_by(BounceMessage.id)))
        session.expunge_all()
        return rows


def test_oversized_message_is_refused_with_552(small_app):
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (LIMIT // 1000 + 10)

    def attack(port: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo("attacker.example")
            # Undeclared size: the data is read, dropped past the limit, then refused.
            smtp.mail("x@attacker.example")
            smtp.rcpt("bounces+1-aaaaaaaaaaaaaaaa@bounces.gt.example.nl")
            code, _ = smtp.data(big)
            assert code == 552
            # Declared size: refused at MAIL FROM, before any data is sent.
            code, _ = smtp.docmd(f"MAIL FROM:<x@attacker.example> SIZE={LIMIT + 1}")
            assert code == 552

    async def client(port: int) -> None:
        await asyncio.to_thread(attack, port)

    _run(small_app, client)
    assert _stored(small_app) == []


def test_one_session_over_the_cap_gets_421(small_app):
    def attack(port: int) -> None:
        held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for _ in range(2)]
        try:
            for smtp in held:
                assert smtp.noop()[0] == 250
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtplib.SMTP("127.0.0.1", port, timeout=10)
            assert refused.value.smtp_code == 421
        finally:
            for smtp in held:
                smtp.quit()
        # The slots are free again once those sessions end.
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            assert smtp.noop()[0] == 250

    async def client(port: int) -> None:
        await asyncio.to_thread(attack, port)

    _run(small_app, client)


def test_only_the_head_of_a_large_bounce_is_stored(small_app):
    with session_scope(small_app.sessions) as session:
        verp = verp_for(small_app.signer, sent_delivery(session))
    raw = sample("handmade_hard_511.eml", verp).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    padded = raw.rstrip(b"\r\n") + b"\r\n" + (b"y" * 70 + b"\r\n") * 1000

    def send(port: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("mailer-daemon@mx.example", [verp], padded)

    async def client(port: int) -> None:
        await asyncio.to_thread(send, port)

    _run(small_app, client)
    [message] = _stored(small_app)
    assert message.raw is not None and len(message.raw) == 4 * 1024 and message.truncated
    assert message.size >= len(padded) - 10


def test_junk_goes_sooner_and_the_total_is_capped(app):
    settings = app.settings
    with session_scope(app.sessions) as session:
        verp = verp_for(app.signer, sent_delivery(session))
        old = utcnow() - dt.timedelta(days=settings.bounces.junk_retention_days + 1)
        service.ingest(session, sample("handmade_hard_511.eml", verp), source="file",
                       settings=settings, signer=app.signer, now=old)
        for n in range(3):
            junk = f"From: x{n}@spam.example\r\nSubject: buy {n}\r\n\r\nspam {n}\r\n".encode()
            service.ingest(session, junk, source="file", settings=settings, signer=app.signer,
                           now=old + dt.timedelta(minutes=n))
        assert service.purge_with_settings(session, settings) == 3
        kept = session.scalars(select(BounceMessage.subject)
                               .where(BounceMessage.raw.is_not(None))).all()
        assert len(kept) == 1  # the matched bounce, younger than retention_days

        # Total cap: the oldest unmatched mail goes first, then matched.
        session.execute(update(BounceMessage).values(raw=b"z" * 1000, purged_at=None))
        fresh = utcnow()
        session.execute(update(BounceMessage).values(received_at=fresh))
        size = func.length(BounceMessage.raw)
        assert service.purge(session, 90, total_bytes=2500) == 2
        assert session.scalar(select(func.sum(size))) == 2000
        left = session.scalars(select(BounceMessage.id).where(BounceMessage.raw.is_not(None))
                               .order_by(BounceMessage.id)).all()
        first_id = session.scalar(select(func.min(BounceMessage.id)))
        assert first_id in left  # the matched one stays
