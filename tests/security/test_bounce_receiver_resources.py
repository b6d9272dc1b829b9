"""Finding 9: the bounce receiver cannot be made to hold unbounded mail.

Replayed against the running receiver on a loopback port: an oversized message is refused with
552 (declared or not), one session more than the cap gets 421, only raw_keep_kib of a stored
message is kept, unmatched mail is forgotten sooner than matched, and the total is capped.
DATA is spooled to a 0600 file in the data folder while it is read: a 9 MiB message costs a
fraction of that in memory, and the SMTP-smuggling line ends, dot-unstuffing, the 552 and
LMTP's per-recipient answers are as in aiosmtpd (whose smtp_DATA we mirror, checked by hash).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import inspect
import os
import smtplib
import socket
import stat
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP
from bounces_support import sample, sent_delivery, verp_for
from sqlalchemy import func, select, update

from mailer.app import App, build_app
from mailer.bounces import service
from mailer.bounces.models import BounceMessage
from mailer.database.connect import session_scope
from mailer.intake import receiver
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


# --- DATA is spooled to disk while it is read -------------------------------------------------

def _serve_protocol(app: App, protocol: str, client: Callable[[int], None]) -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(app, stop, host="127.0.0.1", port=0, protocol=protocol,
                                         ready=ready.set_result))
        try:
            await asyncio.to_thread(client, await asyncio.wait_for(ready, 10))
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    asyncio.run(scenario())


class _Line:
    """A raw SMTP/LMTP client: what it sends is sent byte for byte (smtplib would mend bare
    line ends and dot-stuff, which is what these attacks must not get)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        assert self.reply()[0] == 220

    def reply(self) -> tuple[int, list[bytes]]:
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line.rstrip(b"\r\n"))
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, text: bytes) -> int:
        self.sock.sendall(text + b"\r\n")
        return self.reply()[0]

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> _Line:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spool_fds(folder: Path) -> list[int]:
    """This process's open file descriptors on (unnamed) files in `folder`."""
    found = []
    for entry in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
        if target.startswith(str(folder) + os.sep):
            found.append(int(entry))
    return found


def test_smtp_data_we_mirror_is_the_installed_one():
    # SpoolingSMTP.smtp_DATA mirrors aiosmtpd 1.4.6's (smuggling fix, dot-unstuffing, limits).
    # If this fails, aiosmtpd changed it: compare the two, port the change, then update the hash
    # and the pin in pyproject.toml.
    source = inspect.getsource(SMTP.smtp_DATA).encode()
    assert hashlib.sha256(source).hexdigest() == (
        "3a33f30d3fd6d02f39c7d78a08288bffea9170525b62e2161568041ae7e018df")


def test_a_9_mib_message_is_received_without_holding_it_in_memory(app, monkeypatch):
    size = 9 * 1024 * 1024
    line = b"x" * 998 + b"\r\n"  # the longest line SMTP allows
    chunk = line * 64  # 64 000 bytes, built before measuring
    seen: dict[str, object] = {}
    real = receiver.BounceHandler.handle_DATA

    async def measured(self: receiver.BounceHandler, server: SMTP, session: object,
                       envelope: object) -> str:
        # Called once the data has been read: the peak so far is what DATA cost.
        seen["peak"] = tracemalloc.get_traced_memory()[1]
        seen["spools"] = [stat.S_IMODE(os.fstat(fd).st_mode)
                          for fd in _spool_fds(self.app.settings.data_dir)]
        return await real(self, server, session, envelope)  # type: ignore[arg-type]

    monkeypatch.setattr(receiver.BounceHandler, "handle_DATA", measured)

    def send(port: int) -> None:
        client = _Line(port)
        try:
            assert client.cmd(b"EHLO mx.example") == 250
            assert client.cmd(b"MAIL FROM:<mailer-daemon@mx.example>") == 250
            assert client.cmd(b"RCPT TO:<bounces+1-aaaaaaaaaaaaaaaa@bounces.gt.example.nl>") == 250
            tracemalloc.start()
            try:
                assert client.cmd(b"DATA") == 354
                client.sock.sendall(b"From: x@mx.example\r\nSubject: big\r\n\r\n")
                for _ in range(size // len(chunk) + 1):
                    client.sock.sendall(chunk)
                code, _ = (client.sock.sendall(b".\r\n"), client.reply())[1]
            finally:
                tracemalloc.stop()
            assert code == 250
            assert client.cmd(b"QUIT") == 221
        finally:
            client.close()

    _serve_protocol(app, "smtp", send)
    assert isinstance(seen["peak"], int) and seen["peak"] < 4 * 1024 * 1024, seen["peak"]
    assert seen["spools"] == [0o600]  # on disk in the data folder while it is handled, 0600
    assert _spool_fds(app.settings.data_dir) == []  # and gone afterwards
    [message] = _stored(app)
    assert message.size >= size and message.truncated
    assert message.raw is not None
    assert len(message.raw) == app.settings.bounces.raw_keep_kib * 1024


@pytest.mark.parametrize("bare", [b"\n.\n", b"\n.\r\n", b"\r.\n", b"\r.\r\n", b"\r\n.\n"])
def test_smuggling_line_ends_do_not_end_the_data(app, bare):
    smuggled = b"MAIL FROM:<ceo@gt.example.nl>\r\nRCPT TO:<bounces@bounces.gt.example.nl>\r\n" \
               b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
    # Big enough to move to disk, so the spooled path is the one tested.
    padding = (b"p" * 78 + b"\r\n") * 4000

    def send(port: int) -> None:
        client = _Line(port)
        try:
            assert client.cmd(b"EHLO mx.example") == 250
            assert client.cmd(b"MAIL FROM:<x@attacker.example>") == 250
            assert client.cmd(b"RCPT TO:<bounces@bounces.gt.example.nl>") == 250
            assert client.cmd(b"DATA") == 354
            client.sock.sendall(b"Subject: carrier\r\n\r\n" + padding + b"text" + bare + smuggled
                                + b"..leading dot\r\n.\r\n")
            code, lines = client.reply()
            assert code == 250 and lines == [b"250 2.0.0 Stored"]
            assert client.cmd(b"QUIT") == 221  # no answers to smuggled commands came first
        finally:
            client.close()

    _serve_protocol(app, "smtp", send)
    [message] = _stored(app)
    assert message.subject == "carrier"
    assert message.raw is not None and message.size >= len(padding)
    raw = bytes(message.raw)
    if len(raw) >= message.size:  # kept whole: the smuggled text is data, dot-unstuffed
        assert raw.endswith(b"text" + bare + smuggled + b".leading dot\r\n")


def test_over_the_limit_past_the_spool_is_552_and_the_session_goes_on(settings):
    bounces = dataclasses.replace(settings.bounces, receiver_max_bytes=1024 * 1024)
    app = build_app(dataclasses.replace(settings, bounces=bounces))
    body = (b"z" * 998 + b"\r\n") * 1500  # 1.5 MiB: on disk before it passes the limit

    def send(port: int) -> None:
        client = _Line(port)
        try:
            assert client.cmd(b"EHLO mx.example") == 250
            for subject, code in ((b"too big", 552), (b"fits", 250)):
                assert client.cmd(b"MAIL FROM:<x@mx.example>") == 250
                assert client.cmd(b"RCPT TO:<bounces@bounces.gt.example.nl>") == 250
                assert client.cmd(b"DATA") == 354
                data = body if code == 552 else b"short\r\n"
                client.sock.sendall(b"Subject: " + subject + b"\r\n\r\n" + data + b".\r\n")
                assert client.reply()[0] == code
            assert client.cmd(b"QUIT") == 221
        finally:
            client.close()

    try:
        _serve_protocol(app, "smtp", send)
        assert [m.subject for m in _stored(app)] == ["fits"]
        assert _spool_fds(app.settings.data_dir) == []
    finally:
        app.close()


def test_lmtp_answers_each_recipient_for_spooled_data(app):
    body = (b"l" * 998 + b"\r\n") * 1024  # 1 MiB

    def send(port: int) -> None:
        client = _Line(port)
        try:
            assert client.cmd(b"LHLO mx.example") == 250
            assert client.cmd(b"MAIL FROM:<mailer-daemon@mx.example>") == 250
            for local in (b"bounces+a", b"bounces+b"):
                assert client.cmd(b"RCPT TO:<" + local + b"@bounces.gt.example.nl>") == 250
            assert client.cmd(b"DATA") == 354
            client.sock.sendall(b"Subject: two\r\n\r\n" + body + b".\r\n")
            assert client.reply() == (250, [b"250 2.0.0 Stored"])
            assert client.reply() == (250, [b"250 2.0.0 Stored"])
            assert client.cmd(b"QUIT") == 221
        finally:
            client.close()

    _serve_protocol(app, "lmtp", send)
    [message] = _stored(app)
    assert message.subject == "two" and message.size >= len(body)


def test_a_session_cut_off_during_data_leaves_no_spool_and_stores_nothing(app):
    half = (b"h" * 998 + b"\r\n") * 1024  # 1 MiB, on disk, then the connection goes

    def send(port: int) -> None:
        client = _Line(port)
        assert client.cmd(b"EHLO mx.example") == 250
        assert client.cmd(b"MAIL FROM:<x@mx.example>") == 250
        assert client.cmd(b"RCPT TO:<bounces@bounces.gt.example.nl>") == 250
        assert client.cmd(b"DATA") == 354
        client.sock.sendall(b"Subject: cut\r\n\r\n" + half)
        client.close()
        # The next session is served once the receiver has dropped the cut one (and its file).
        deadline = time.monotonic() + 10
        while _spool_fds(app.settings.data_dir) and time.monotonic() < deadline:
            with _Line(port) as probe:
                assert probe.cmd(b"NOOP") == 250
        assert _spool_fds(app.settings.data_dir) == []

    _serve_protocol(app, "smtp", send)
    assert _stored(app) == []
