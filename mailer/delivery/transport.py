"""SMTP to the relay: connections made from settings, a one-off send, and reply classification.

Everything that speaks SMTP for sending lives here (aiosmtplib); the engine sees `connect()`,
`send_one()` and the `Outcome` they produce, never the library's exceptions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from mailer.errors import DeliveryError
from mailer.settings import Settings

__all__ = [
    "Outcome",
    "is_permanent",
    "connect",
    "send_one",
    "send_message",
    "send_message_sync",
]


def is_permanent(code: int) -> bool:
    """Mailman's rule: a 5xx is permanent, except 552 (mailbox full), which may clear up."""
    return code >= 500 and code != 552


@dataclass(frozen=True)
class Outcome:
    """What became of one message: `sent`, `temporary` (retry), `permanent`, or `connection`
    (the link to the relay broke; the message was not accepted and the connection is gone)."""

    kind: str
    code: int | None = None
    message: str = ""
    # A permanent failure decided here, not by the recipient's side (our relay cannot carry
    # the address): the delivery fails, but it is no bounce against the person.
    local: bool = False


_CONNECTION_ERRORS = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPConnectTimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def connect(settings: Settings) -> aiosmtplib.SMTP:
    """An open, authenticated connection to the relay; DeliveryError if it cannot be made."""
    smtp_cfg = settings.smtp
    password = smtp_cfg.password or os.environ.get("MAILER_SMTP_PASSWORD", "")
    client = aiosmtplib.SMTP(
        hostname=smtp_cfg.host,
        port=smtp_cfg.port,
        timeout=smtp_cfg.timeout_seconds,
        use_tls=smtp_cfg.tls == "tls",
        start_tls=smtp_cfg.tls == "starttls",
        tls_context=_tls_context() if smtp_cfg.tls != "none" else None,
        username=smtp_cfg.username or None,
        password=password if smtp_cfg.username else None,
    )
    try:
        await client.connect()
        if client.is_ehlo_or_helo_needed:  # connect() greets only for STARTTLS or AUTH
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"SMTP {smtp_cfg.host}:{smtp_cfg.port}: login refused ({exc.code} {exc.message})",
            exc.code,
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(
            f"SMTP {smtp_cfg.host}:{smtp_cfg.port}: {exc.code} {exc.message}", exc.code
        ) from None
    except (*_CONNECTION_ERRORS, aiosmtplib.SMTPException) as exc:
        raise DeliveryError(
            f"SMTP {smtp_cfg.host}:{smtp_cfg.port}: cannot connect: {exc or type(exc).__name__}"
        ) from None
    return client


def _refusal(code: int, message: str) -> Outcome:
    return Outcome("permanent" if is_permanent(code) else "temporary", code, message)


def _wire_data(data: bytes) -> bytes:
    """The message as sent after DATA: CRLF line ends, dot-stuffed, with the final dot.

    Composition already writes CRLF; the regex normalisation only runs if it did not.
    """
    if data.count(b"\n") != data.count(b"\r\n"):
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


async def send_one(
    client: aiosmtplib.SMTP, envelope_from: str, recipient: str, data: bytes
) -> Outcome:
    """Send one message to one recipient on an open connection, and classify the answer.

    Speaks MAIL / RCPT / DATA through aiosmtplib's protocol directly: `sendmail` re-parses both
    addresses with the email package and runs two regular expressions over every message,
    which cost more than the rest of the send on a fast relay. Our addresses were validated
    when they were stored, and the protocol still refuses CR/LF in a command.
    """
    proto = client.protocol
    if proto is None or not (envelope_from.isascii() and recipient.isascii()):
        return await _send_with_sendmail(client, envelope_from, recipient, data)
    pipelined = (
        _pipelining(client, proto)
        and _SAFE_ADDRESS.match(envelope_from) is not None
        and _SAFE_ADDRESS.match(recipient) is not None
    )
    try:
        # One deadline for the whole transaction instead of a timer per reply.
        async with asyncio.timeout(client.timeout):
            if pipelined:
                return await _send_pipelined(proto, envelope_from, recipient, data)
            return await _send_stepwise(proto, envelope_from, recipient, data)
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code < 400:
            return Outcome("connection", exc.code, exc.message)
        return _refusal(exc.code, exc.message)
    except (*_CONNECTION_ERRORS, aiosmtplib.SMTPException) as exc:
        return Outcome("connection", None, str(exc) or type(exc).__name__)
    except ValueError as exc:  # the protocol refused a control character in an address
        return Outcome("permanent", 501, f"address not usable: {exc}")


async def _send_stepwise(proto: Any, envelope_from: str, recipient: str, data: bytes) -> Outcome:
    """MAIL, RCPT and DATA one at a time, each waiting for its reply: four round trips."""
    reply = await proto.execute_command(b"MAIL", b"FROM:<" + envelope_from.encode() + b">")
    if reply.code != 250:
        await _reset(proto)
        return _refusal(reply.code, reply.message)
    reply = await proto.execute_command(b"RCPT", b"TO:<" + recipient.encode() + b">")
    if reply.code not in (250, 251):
        await _reset(proto)
        return _refusal(reply.code, reply.message)
    reply = await proto.execute_command(b"DATA")
    if reply.code != 354:
        await _reset(proto)
        return _refusal(reply.code, reply.message)
    # No await between write and read_response: the reply cannot arrive unexpected.
    proto.write(_wire_data(data))
    reply = await proto.read_response()
    if reply.code != 250:
        return _refusal(reply.code, reply.message)
    return Outcome("sent", 250)


_SAFE_ADDRESS = re.compile(r"^[^\s<>]+@[^\s<>]+$")


def _pipelining(client: aiosmtplib.SMTP, proto: Any) -> bool:
    """The relay takes pipelined commands (RFC 2920) and this aiosmtplib lets us read replies
    that arrived together (its reply buffer is not a public interface, so check it exists)."""
    return client.supports_extension("pipelining") and hasattr(
        proto, "_read_response_from_buffer"
    )


async def _next_reply(proto: Any) -> Any:
    """The next reply: already in the buffer (it came with the previous one), or awaited.

    No await runs between consecutive calls, so no reply can arrive while none is expected.
    """
    if proto._buffer:
        buffered = proto._read_response_from_buffer()
        if buffered is not None:
            return buffered
    return await proto.read_response()


async def _send_pipelined(
    proto: Any, envelope_from: str, recipient: str, data: bytes
) -> Outcome:
    """MAIL, RCPT and DATA in one write, then the message: two round trips instead of four."""
    proto.write(b"MAIL FROM:<" + envelope_from.encode() + b">\r\nRCPT TO:<"
                + recipient.encode() + b">\r\nDATA\r\n")
    mail = await proto.read_response()
    rcpt = await _next_reply(proto)
    start = await _next_reply(proto)
    if start.code == 354 and (mail.code != 250 or rcpt.code not in (250, 251)):
        # A relay that opened DATA despite a refusal: end the empty message.
        proto.write(b".\r\n")
        await proto.read_response()
    refused = next((r for r in (mail, rcpt, start) if r.code not in (250, 251, 354)), None)
    if refused is not None:
        await _reset(proto)
        return _refusal(refused.code, refused.message)
    proto.write(_wire_data(data))
    reply = await proto.read_response()
    if reply.code != 250:
        return _refusal(reply.code, reply.message)
    return Outcome("sent", 250)


async def _reset(proto: Any) -> None:
    reply = await proto.execute_command(b"RSET")
    if reply.code != 250:
        raise aiosmtplib.SMTPServerDisconnected(f"RSET refused: {reply.code} {reply.message}")


async def _send_with_sendmail(
    client: aiosmtplib.SMTP, envelope_from: str, recipient: str, data: bytes
) -> Outcome:
    """The library's own path (SMTPUTF8 addresses, or no protocol object).

    An address with accents before the @ (renée@...) needs SMTPUTF8 (RFC 6531): used when the
    relay offers it; when it does not, that one message fails permanently with the reason,
    so it never looks like a broken connection that pauses the campaign.
    """
    options: list[str] = []
    if not (envelope_from.isascii() and recipient.isascii()):
        if not client.supports_extension("smtputf8"):
            return Outcome("permanent", 553, f"{recipient}: the relay does not offer SMTPUTF8, "
                           "which an address with accents needs", local=True)
        options = ["SMTPUTF8"]
    try:
        await client.sendmail(envelope_from, [recipient], data, mail_options=options)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients[0] if exc.recipients else None
        return _refusal(refused.code if refused else 550,
                        refused.message if refused else str(exc))
    except aiosmtplib.SMTPResponseException as exc:
        if exc.code < 400:
            return Outcome("connection", exc.code, exc.message)
        return _refusal(exc.code, exc.message)
    except (*_CONNECTION_ERRORS, aiosmtplib.SMTPException) as exc:
        return Outcome("connection", None, str(exc) or type(exc).__name__)
    except (UnicodeError, ValueError) as exc:  # an address the protocol cannot carry
        return Outcome("permanent", 553, f"{recipient}: address not usable: {exc}", local=True)
    return Outcome("sent", 250)


async def send_message(
    settings: Settings, envelope_from: str, recipients: list[str], data: bytes
) -> None:
    """Send one message (a test mail, a confirmation) over its own connection.

    DeliveryError, with the SMTP code when the relay answered, if any recipient is refused.
    """
    client = await connect(settings)
    try:
        for recipient in recipients:
            outcome = await send_one(client, envelope_from, recipient, data)
            if outcome.kind != "sent":
                raise DeliveryError(
                    f"SMTP {settings.smtp.host}:{settings.smtp.port} refused {recipient}: "
                    f"{outcome.code or ''} {outcome.message}".strip(),
                    outcome.code,
                )
    finally:
        try:
            await client.quit()
        except Exception:  # the message is sent or refused already; closing is best effort
            client.close()


def send_message_sync(
    settings: Settings, envelope_from: str, recipients: list[str], data: bytes
) -> None:
    """`send_message` for code that is not async (CLI commands, web handlers in threads)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(send_message(settings, envelope_from, recipients, data))
        return
    # Called from inside an event loop's thread: run the send on a helper thread's own loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, send_message(settings, envelope_from, recipients, data)
        ).result()
