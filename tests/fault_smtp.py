"""A relay that misbehaves on purpose, for the delivery fault tests (and bench/faults.py).

The counting server of smtp_support, plus the faults relays really have:

- `idle_timeout`: connections idle that long are dropped by the server (aiosmtpd's own
  timeout), as Exchange Online and Postfix do;
- `down()` / `up()`: the relay is away (nothing listens: connection refused), then back on the
  same port;
- `refuse_all`: every RCPT answered with this (421 / 451) while set;
- `delay`: each message takes this long at DATA (a slow relay, so tests can act mid-run);
- `stall()` / `unstall()`: DATA hangs until released.

It counts what it accepted, with the time, so tests can find duplicates and the peak
per-second rate. Beside it, what the fault tests and the bench both do to a worker or wait for:
`stop_outside_a_transaction` and `wait_until`.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_support import Received, SmtpServer, _Handler
from sqlalchemy.engine import make_url


class _FaultHandler(_Handler):
    server: FaultServer

    async def handle_RCPT(
        self, srv: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refuse = self.server.refuse_all
        if refuse is not None:
            return f"{refuse[0]} {refuse[1]}"
        return await super().handle_RCPT(srv, session, envelope, address, options)

    async def handle_DATA(self, srv: SMTP, session: Session, envelope: Envelope) -> str:
        server = self.server
        if server.delay:
            await asyncio.sleep(server.delay)  # the simulated relay's own slowness
        while server.stalled.is_set():
            await asyncio.sleep(0.01)
        return await super().handle_DATA(srv, session, envelope)


class _CountingSMTP(SMTP):
    """aiosmtpd's server, counting connections it lost (idle timeouts, drops)."""

    fault_server: FaultServer

    def connection_lost(self, error: Exception | None) -> None:
        with self.fault_server.lock:
            self.fault_server.dropped += 1
        super().connection_lost(error)


class _FaultController(Controller):
    def __init__(self, server: FaultServer, **kwargs: object) -> None:
        self.fault_server = server
        super().__init__(_FaultHandler(server), **kwargs)  # type: ignore[arg-type]

    def factory(self) -> SMTP:
        smtp = _CountingSMTP(self.handler, **self.SMTP_kwargs)
        smtp.fault_server = self.fault_server
        return smtp


class FaultServer(SmtpServer):
    def __init__(self, *, idle_timeout: float = 300, delay: float = 0.0) -> None:
        super().__init__()
        self.idle_timeout = idle_timeout
        self.delay = delay
        self.refuse_all: tuple[int, str] | None = None
        self.stalled = threading.Event()
        self.dropped = 0
        self._controller = self._make_controller()

    def _make_controller(self) -> Controller:
        return _FaultController(self, hostname=self.host, port=self.port,
                                timeout=self.idle_timeout)

    def down(self) -> None:
        """Stop listening: connections are refused, open ones are dropped."""
        self._controller.stop()

    def up(self) -> None:
        self._controller = self._make_controller()
        self._controller.start()

    def stall(self) -> None:
        self.stalled.set()

    def unstall(self) -> None:
        self.stalled.clear()

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def duplicates(self) -> Counter[str]:
        return Counter({rcpt: n - 1 for rcpt, n in self.rcpts().items() if n > 1})

    def peak_per_second(self) -> int:
        """The most messages accepted within any one second (sliding window)."""
        with self.lock:
            times = sorted(r.at for r in self.received)
        peak = 0
        start = 0
        for end, at in enumerate(times):
            while at - times[start] >= 1.0:
                start += 1
            peak = max(peak, end - start + 1)
        return peak

    def received_since(self, since: float) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.at >= since]


def wait_until(condition: object, *, timeout: float = 30, what: str = "condition") -> None:
    """Poll `condition()` until true (for database state, which has no notification)."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def stop_outside_a_transaction(proc: subprocess.Popen[Any], db_url: str) -> None:
    """SIGSTOP the worker. SQLite has one writer: a worker stopped inside a transaction
    holds the whole database (that is SQLite's nature, not a takeover to test), so stop it
    again until it is caught between transactions."""
    for _ in range(200):
        proc.send_signal(signal.SIGSTOP)
        if not db_url.startswith("sqlite"):
            return
        conn = sqlite3.connect(make_url(db_url).database or "", timeout=0.05,
                               isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
        finally:
            conn.close()
    raise AssertionError("the worker was always inside a transaction")
