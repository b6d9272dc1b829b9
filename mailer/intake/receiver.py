"""Intake adapter: an SMTP or LMTP receiver (aiosmtpd) for the bounce domain, inside `mailer run`.

The MTA relays the bounce domain (and the unsubscribe address) to it, e.g. Postfix
`transport_maps`: `bounces.gt.example.nl  lmtp:inet:127.0.0.1:2526`. Each message is stored
before the receiver says 250; if storing fails it says 451, so the MTA keeps the message and
tries again: nothing is lost. Other recipients are refused at RCPT.

Anyone who can reach the port may send, so what one sender can make us hold is bounded:
a message larger than bounces.receiver_max_bytes is refused with 552 — at MAIL FROM when it
declares its SIZE, else after the data, which is dropped as soon as it passes the limit — and a
session beyond bounces.receiver_max_sessions is answered 421 and closed. DATA is written, while
it is read, to a temporary file that stays in memory up to SPOOL_MEMORY and then moves to disk
(an unnamed 0600 file in the 0700 data folder, gone when closed), so an open session holds at
most that much; one message at a time is then read back (up to what is parsed) and ingested.
Only raw_keep_kib of each is stored.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from mailer.bounces.parse import MAX_BYTES
from mailer.files import private_folder
from mailer.intake.files import ingest_bytes

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["BounceHandler", "serve", "receiver_part"]

log = logging.getLogger(__name__)
# aiosmtpd logs every command and every envelope address at INFO ("mail.log"): a record of
# who wrote to us that outlives an erasure. Its warnings and errors are kept.
logging.getLogger("mail.log").setLevel(logging.WARNING)

BUSY = b"421 4.3.2 Too many connections, try again later\r\n"
#: How much of one message's DATA is held in memory before it moves to a file on disk.
SPOOL_MEMORY = 256 * 1024


class SpoolEnvelope(Envelope):
    """An envelope whose DATA is in `spool` (content and original_content stay None)."""

    spool: IO[bytes] | None = None
    size: int = 0


class SpoolingSMTP(SMTP):
    """aiosmtpd's SMTP with smtp_DATA writing the data to a temporary file instead of a list of
    lines in memory. smtp_DATA mirrors aiosmtpd 1.4.6's line for line (pyproject.toml pins that
    version; tests/security/test_bounce_receiver_resources.py fails when its source changes):
    only CRLF.CRLF ends the data (lines are read up to CRLF, so a bare LF or CR followed by a dot
    is data — the SMTP-smuggling fix), dot-unstuffing, 500 for a line over the stream limit, 552
    past data_size_limit (nothing more is kept). The data goes to the handler's handle_DATA as
    `envelope.spool`; the backward-compatible process_message hook is not offered."""

    def __init__(self, *args: Any, spool_dir: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spool_dir = spool_dir

    def _create_envelope(self) -> Envelope:
        return SpoolEnvelope()

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert isinstance(envelope, SpoolEnvelope)
        if not envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in the finally below
            max_size=SPOOL_MEMORY, dir=None if self.spool_dir is None else str(self.spool_dir))
        try:
            await self._read_data(spool, envelope)
        finally:
            envelope.spool = None
            spool.close()  # an unnamed file: closing it frees its disk space

    async def _read_data(self, spool: IO[bytes], envelope: SpoolEnvelope) -> None:
        num_bytes = 0
        limit = self.data_size_limit
        too_long = too_much = False
        # aiosmtpd collects the fragments of an over-long line only to drop them; whether a
        # fragment is pending is all that matters (a dot after one does not end the data).
        mid_line = False
        while self.transport is not None:
            try:
                # https://datatracker.ietf.org/doc/html/rfc5321#section-2.3.8
                line: bytes = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as e:
                if not too_much:
                    too_long = True
                line = await self._reader.read(e.consumed)
                spool.seek(0)
                spool.truncate()
            if not mid_line and line == b".\r\n":
                break
            num_bytes += len(line)
            if not (too_long or too_much) and limit and num_bytes > limit:
                too_much = True
                spool.seek(0)
                spool.truncate()
            mid_line = not line.endswith(b"\r\n")
            if not mid_line and not (too_long or too_much):
                if len(line) > self.line_length_limit:
                    too_long = True
                    spool.seek(0)
                    spool.truncate()
                else:  # de-transparency, RFC 5321 section 4.5.2
                    spool.write(line[1:] if line.startswith(b".") else line)
        else:
            return  # the connection closed before the end of the data: nothing to hand on
        if too_long or too_much:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)" if too_long
                            else "552 Error: Too much mail data")
            self._set_post_data_state()
            return
        envelope.size = spool.tell()
        spool.seek(0)
        envelope.spool = spool
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class SpoolingLMTP(SpoolingSMTP, LMTP):
    """LMTP (LHLO, no HELO/EHLO) with the spooling DATA."""


class _Sessions:
    """How many sessions are open; one object per listening socket."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


def _capped(server_class: type[SpoolingSMTP], sessions: _Sessions) -> type[SpoolingSMTP]:
    """`server_class` that answers 421 and hangs up when `sessions.limit` are already open."""

    class Capped(server_class):  # type: ignore[valid-type,misc]
        _counted = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if not self._counted and sessions.open >= sessions.limit:
                log.warning("bounce receiver busy (%d sessions): refused one", sessions.open)
                assert isinstance(transport, asyncio.WriteTransport)
                transport.write(BUSY)
                transport.close()
                self.transport = None
                return
            if not self._counted:
                self._counted = True
                sessions.open += 1
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            if self._counted:
                self._counted = False
                sessions.open -= 1
            if self.session is not None:
                super().connection_lost(error)

        def eof_received(self) -> bool | None:
            return super().eof_received() if self.session is not None else False

    return Capped


class BounceHandler:
    """aiosmtpd handler: accept mail for the bounce domain and the unsubscribe address."""

    def __init__(self, app: App, source: str) -> None:
        self.app = app
        self.source = source
        self.domain = app.settings.sender.bounce_domain.lower()
        self.unsubscribe = app.settings.sender.unsubscribe_address.lower()
        # Answers from calendars come to the ORGANIZER address (events.reply_domain).
        self.domains = {self.domain, app.settings.events.reply_domain.lower() or self.domain}
        # One message at a time is read back from its spool and ingested: the memory of the
        # parse is paid once, not once per session.
        self.one_at_a_time = asyncio.Semaphore(1)

    def accepts(self, address: str) -> bool:
        address = address.strip().strip("<>").lower()
        local, _, domain = address.rpartition("@")
        wanted_local, _, wanted_domain = self.unsubscribe.rpartition("@")
        # afmelden+<signed token>@...: a person's own List-Unsubscribe mailto
        personal = domain == wanted_domain and local.startswith(wanted_local + "+")
        return address == self.unsubscribe or personal or domain in self.domains

    async def handle_RCPT(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self.accepts(address):
            return "550 5.1.1 Not a bounce address of this mailer"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(
        self, server: SMTP, session: SmtpSession, envelope: Envelope
    ) -> str:
        assert isinstance(envelope, SpoolEnvelope) and envelope.spool is not None
        spool = envelope.spool
        try:
            async with self.one_at_a_time:
                # Only what is parsed is read back (parse.MAX_BYTES); the rest stays on disk.
                await asyncio.to_thread(
                    lambda: ingest_bytes(
                        self.app, spool.read(MAX_BYTES + 1), source=self.source,
                        envelope_from=str(envelope.mail_from or ""),
                        envelope_to=list(envelope.rcpt_tos), size=envelope.size))
            reply = "250 2.0.0 Stored"
        except Exception:
            log.exception("bounce not stored; the sender will retry")
            reply = "451 4.3.0 Not stored, try again later"
        if self.source == "lmtp":  # LMTP answers DATA once per recipient
            return "\r\n".join([reply] * max(1, len(envelope.rcpt_tos)))
        return reply


async def serve(
    app: App,
    stop: asyncio.Event,
    *,
    host: str | None = None,
    port: int | None = None,
    protocol: str | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Run the receiver until `stop` is set. `ready(port)` is called once it listens (port 0
    in tests picks a free port)."""
    settings = app.settings.bounces
    protocol = (protocol or settings.receiver_protocol).lower()
    if protocol not in ("smtp", "lmtp"):
        raise ValueError(f"bounces.receiver_protocol must be smtp or lmtp, got {protocol!r}")
    handler = BounceHandler(app, protocol)
    server_class = _capped(SpoolingLMTP if protocol == "lmtp" else SpoolingSMTP,
                           _Sessions(settings.receiver_max_sessions))
    # Spooled data goes to the data folder (0700), not a /tmp that may be memory itself.
    spool_dir = private_folder(app.settings.data_dir)

    def factory() -> Any:
        return server_class(handler, data_size_limit=settings.receiver_max_bytes,
                            enable_SMTPUTF8=True, decode_data=False,
                            ident="GT Mailer bounce receiver", spool_dir=spool_dir)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, host or settings.receiver_host, settings.receiver_port if port is None else port
    )
    bound = server.sockets[0].getsockname()[1]
    log.info("bounce receiver (%s) listening on %s:%s", protocol, host or settings.receiver_host,
             bound)
    if ready is not None:
        ready(bound)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


async def receiver_part(app: App, stop: asyncio.Event) -> None:
    """Service part for `mailer run`: the receiver, if bounces.receiver_port is set (not 0)."""
    settings = app.settings.bounces
    if settings.receiver_port == 0:
        return
    try:
        await serve(app, stop)
    except OSError as exc:
        # Like the web pages: sending goes on; the MTA keeps the bounces until we listen.
        log.error("bounce receiver cannot listen on %s:%s: %s", settings.receiver_host,
                  settings.receiver_port, exc)
