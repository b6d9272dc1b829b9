"""A real SMTP server on loopback for delivery tests (aiosmtpd, on its own thread).

It records what it accepts (recipient, envelope sender, bytes, time) and can be told to defer
(4xx) or reject (5xx) chosen recipients, or to drop connections, so tests see the relay's real
answers through the real client.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailer.delivery.capture import free_port


@dataclass
class Received:
    rcpt: str
    mail_from: str
    data: bytes
    at: float


@dataclass
class Behaviour:
    # recipient (lower-case) -> (code, text) answered at RCPT TO; a list is consumed in order,
    # then the recipient is accepted.
    rcpt_replies: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # Drop the connection at DATA while this is above zero (each drop counts down one).
    drop_data: int = 0


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, srv: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if not self.server.pipelining:
            return responses
        # aiosmtpd reads commands line by line, so pipelined commands work; advertise them
        # like Postfix and Exchange do, so the client's pipelined path is what tests see.
        return [responses[0], "250-PIPELINING", *responses[1:]]

    async def handle_RCPT(
        self, srv: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        replies = self.server.behaviour.rcpt_replies.get(address.lower())
        if replies:
            code, text = replies.pop(0)
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, srv: SMTP, session: Session, envelope: Envelope) -> str:
        behaviour = self.server.behaviour
        if behaviour.drop_data > 0:
            behaviour.drop_data -= 1
            assert srv.transport is not None
            srv.transport.close()
            return "421 closing"
        now = time.monotonic()
        with self.server.lock:
            for rcpt in envelope.rcpt_tos:
                self.server.received.append(
                    Received(rcpt, envelope.mail_from or "", envelope.original_content or b"", now)
                )
            self.server.lock.notify_all()
        return "250 OK"


class SmtpServer:
    """Start with `SmtpServer().start()`; `port`, `received`, `wait_for(...)`."""

    def __init__(self, *, pipelining: bool = True, smtputf8: bool = False) -> None:
        self.pipelining = pipelining
        self.smtputf8 = smtputf8
        self.host = "127.0.0.1"
        self.port = free_port()
        self.behaviour = Behaviour()
        self.received: list[Received] = []
        self.lock = threading.Condition()
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                      enable_SMTPUTF8=smtputf8)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def rcpts(self) -> Counter[str]:
        with self.lock:
            return Counter(r.rcpt.lower() for r in self.received)

    def wait_for(self, condition: Callable[[list[Received]], bool], timeout: float = 30) -> None:
        """Block until `condition(received)` holds (checked on every message), or fail."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not condition(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"SMTP server: condition not met in {timeout}s "
                        f"({len(self.received)} messages received)"
                    )
                self.lock.wait(left)

