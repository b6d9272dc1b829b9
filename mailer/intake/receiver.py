"""Intake adapter: an SMTP or LMTP receiver (aiosmtpd) for the bounce domain, inside `mailer run`.

The MTA relays the bounce domain (and the unsubscribe address) to it, e.g. Postfix
`transport_maps`: `bounces.gt.example.nl  lmtp:inet:127.0.0.1:2526`. Each message is stored
before the receiver says 250; if storing fails it says 451, so the MTA keeps the message and
tries again: nothing is lost. Other recipients are refused at RCPT.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from mailer.bounces.parse import MAX_BYTES
from mailer.intake.files import ingest_bytes

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["BounceHandler", "serve", "receiver_part"]

log = logging.getLogger(__name__)

# Larger messages are refused with 552 by aiosmtpd; up to this size they are accepted and
# stored cut off at MAX_BYTES.
DATA_SIZE_LIMIT = 64 * 1024 * 1024


class BounceHandler:
    """aiosmtpd handler: accept mail for the bounce domain and the unsubscribe address."""

    def __init__(self, app: App, source: str) -> None:
        self.app = app
        self.source = source
        self.domain = app.settings.sender.bounce_domain.lower()
        self.unsubscribe = app.settings.sender.unsubscribe_address.lower()
        # Answers from calendars come to the ORGANIZER address (events.reply_domain).
        self.domains = {self.domain, app.settings.events.reply_domain.lower() or self.domain}

    def accepts(self, address: str) -> bool:
        address = address.strip().strip("<>").lower()
        return address == self.unsubscribe or address.rsplit("@", 1)[-1] in self.domains

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
        data = envelope.original_content or envelope.content or b""
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
        try:
            await asyncio.to_thread(
                ingest_bytes, self.app, raw[: MAX_BYTES + 1], source=self.source,
                envelope_from=str(envelope.mail_from or ""), envelope_to=list(envelope.rcpt_tos),
                size=len(raw),
            )
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
    server_class = LMTP if protocol == "lmtp" else SMTP

    def factory() -> Any:
        return server_class(handler, data_size_limit=DATA_SIZE_LIMIT, enable_SMTPUTF8=True,
                            decode_data=False, ident="GT Mailer bounce receiver")

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
