"""The one sender for one-off mail: RSVP confirmations, waiting-list seats, reminders, sign-up,
confirmation and welcome mails, data copies and `campaigns test`.

It shares what the campaign engine has, so one-off mail behaves like a newsletter at the relay:
a small pool of reused connections (pipelined, through `mailer.delivery.transport`), the same
relay budget (`mailer.delivery.relay_budget`, asked in the transaction that claims the work),
and the same retry rule (`mailer.delivery.retry`): a 4xx is tried again after
`delivery.retry_base_seconds`, doubling up to an hour, until `delivery.retry_deadline_hours`
after the first attempt; a 5xx (but 552) fails at once. A pooled connection the relay dropped
while idle is reconnected, not counted as a failure; a relay that cannot be reached leaves the
mail owed, untried.

Mail that must survive a restart is in the database before it is sent: meeting mail in
`event_mails` (mailer.usecases.meeting_mail), everything else in the `outbox` table, which the
service (`mailer run`'s due work) delivers and retries. Synchronous callers (the CLI, web
handlers on threads, due work) use the blocking methods; the connections live on the sender's
own event loop thread, so they are reused from one call to the next for the process's life.
The composition root (mailer.app) builds one Sender per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosmtplib
from sqlalchemy.orm import Session, sessionmaker

from mailer.database.connect import session_scope
from mailer.delivery import queries, transport
from mailer.delivery.relay_budget import RelayBudget
from mailer.delivery.retry import judge
from mailer.errors import DeliveryError
from mailer.kernel.clock import utcnow
from mailer.settings import Settings

__all__ = [
    "Message",
    "OutboxReport",
    "Sender",
    "CLAIM_LEASE",
]

T = TypeVar("T")

# A claim older than this is a crashed sender's, and the mail is taken again.
CLAIM_LEASE = dt.timedelta(minutes=10)
# One-off mail is a trickle beside the campaigns: a couple of connections is plenty, and a relay
# like Exchange Online allows only a few per mailbox for everything we send.
_POOL_SIZE = 2
# A connection idle longer than this is closed rather than reused: relays drop idle ones.
_IDLE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Message:
    """One composed message for one recipient."""

    envelope_from: str
    recipient: str
    data: bytes


@dataclass
class OutboxReport:
    sent: int = 0
    failed: int = 0
    retry: int = 0
    released: int = 0
    # Seconds until the relay budget has room again, when it had none.
    budget_wait: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Idle:
    client: aiosmtplib.SMTP
    since: float


class Sender:
    """One per process, built by the composition root; `close()` when done."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        connect: Callable[[Settings], Awaitable[aiosmtplib.SMTP]] = transport.connect,
        pool_size: int = _POOL_SIZE,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.budget = RelayBudget(settings.smtp)
        self._connect = connect
        self.pool_size = max(1, min(pool_size, settings.smtp.max_connections))
        self._idle: list[_Idle] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- the pool, on the sender's own event loop ---------------------------------------------

    async def send(self, messages: Sequence[Message]) -> list[transport.Outcome]:
        """Send each message over the pool (at most pool_size at once); one outcome each.

        Must run on the sender's loop (use `send_sync` from other threads). Once a fresh
        connection cannot be made, the remaining messages are not tried (`connection`).
        """
        outcomes: list[transport.Outcome | None] = [None] * len(messages)
        todo = deque(enumerate(messages))
        down: list[str] = []

        async def worker() -> None:
            client, used = self._take()
            try:
                while todo:
                    index, message = todo.popleft()
                    if down:
                        outcomes[index] = transport.Outcome("connection", None, down[0])
                        continue
                    outcome, client, used = await self._send_one(client, used, message)
                    if outcome.kind == "connection" and client is None:
                        down.append(outcome.message)
                    outcomes[index] = outcome
            finally:
                if client is not None:
                    self._idle.append(_Idle(client, time.monotonic()))

        workers = min(self.pool_size, len(messages))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return [o or transport.Outcome("connection", None, "not sent") for o in outcomes]

    def _take(self) -> tuple[aiosmtplib.SMTP | None, bool]:
        """An idle pooled connection (True: it was used before) or none to open."""
        now = time.monotonic()
        while self._idle:
            idle = self._idle.pop()
            if now - idle.since <= _IDLE_SECONDS:
                return idle.client, True
            idle.client.close()  # likely dropped by the relay by now: open a fresh one
        return None, False

    async def _send_one(
        self, client: aiosmtplib.SMTP | None, used: bool, message: Message
    ) -> tuple[transport.Outcome, aiosmtplib.SMTP | None, bool]:
        """(outcome, the connection to go on with, whether it has carried a message).

        A connection that carried mail before and now fails was closed by the relay meanwhile
        (idle timeout, a limit per connection): reconnect and try once more. Only a fresh
        connection failing means the relay is in trouble.
        """
        while True:
            if client is None:
                try:
                    client = await self._connect(self.settings)
                except DeliveryError as exc:
                    return transport.Outcome("connection", None, str(exc)), None, False
                used = False
            try:
                outcome = await transport.send_one(
                    client, message.envelope_from, message.recipient, message.data
                )
            except Exception as exc:  # a bug or a surprise: the message counts as untried
                outcome = transport.Outcome("connection", None, repr(exc))
            if outcome.kind != "connection":
                return outcome, client, True
            client.close()
            client = None
            if not used:
                return outcome, None, False

    async def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for item in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(item.client.quit(), 2)
            item.client.close()

    # -- blocking entry points ----------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="mailer-sender", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def send_sync(self, messages: Sequence[Message]) -> list[transport.Outcome]:
        """`send` for code on other threads (CLI, web handlers, due work)."""
        if not messages:
            return []
        return self._run(self.send(messages))

    def close(self) -> None:
        """Say goodbye to the relay on the pooled connections and stop the loop thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close_idle(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        loop.close()

    # -- the outbox ---------------------------------------------------------------------------

    def queue(
        self,
        session: Session,
        kind: str,
        messages: Sequence[Message],
        *,
        subscriber_id: int | None = None,
    ) -> list[int]:
        """Owe these messages in the caller's transaction; `deliver_outbox` sends them."""
        return queries.queue_outbox(
            session,
            [{"kind": kind, "subscriber_id": subscriber_id, "envelope_from": m.envelope_from,
              "recipient": m.recipient, "data": m.data} for m in messages],
            self.clock(),
        )

    def deliver_outbox(
        self,
        *,
        ids: Sequence[int] | None = None,
        now: dt.datetime | None = None,
        limit: int = 200,
        unreachable: str = "released",
    ) -> OutboxReport:
        """Send what the outbox owes now (all, or only `ids`), as the relay budget allows.

        A message the relay defers is kept for its retry time; one that cannot be sent because
        the relay is unreachable is handed back untried (`unreachable="released"`) or, for a
        person waiting at the command line, recorded as failed (`"failed"`).
        """
        stamp = (now or self.clock()).astimezone(dt.UTC)
        report = OutboxReport()
        with session_scope(self.sessions) as session:
            room, report.budget_wait = self.budget.room(session, stamp, limit)
            claimed = queries.claim_outbox(
                session, stamp, limit=room, stale_before=stamp - CLAIM_LEASE, ids=ids
            )
            rows = queries.outbox_messages(session, claimed)
        if not rows:
            return report
        outcomes = self.send_sync(
            [Message(r["envelope_from"], r["recipient"], r["data"] or b"") for r in rows]
        )
        records: list[dict[str, Any]] = []
        released: list[int] = []
        delivery = self.settings.delivery
        for row, outcome in zip(rows, outcomes, strict=True):
            verdict = judge(outcome, delivery, attempts=row["attempts"],
                            first_attempt_at=row["first_attempt_at"], now=stamp)
            if verdict.status == "released" and unreachable != "failed":
                released.append(row["id"])
                report.released += 1
                if not report.errors:
                    report.errors.append(verdict.error)
                continue
            status = {"sent": "sent", "retry": "pending"}.get(verdict.status, "failed")
            records.append({
                "b_id": row["id"], "b_status": status, "b_error": verdict.error,
                "b_next": verdict.next_at, "b_first": verdict.first_at or stamp,
                "b_sent": stamp if status == "sent" else None,
            })
            if status == "sent":
                report.sent += 1
            else:
                report.errors.append(verdict.error)
                if status == "pending":
                    report.retry += 1
                else:
                    report.failed += 1
        with session_scope(self.sessions) as session:
            queries.record_outbox(session, records)
            queries.release_outbox(session, released)
        return report

    def deliver_due(self, now: dt.datetime | None = None) -> OutboxReport:
        """Rounds of `deliver_outbox` until nothing due is left (or the relay or its budget
        says stop): the service's due work."""
        total = OutboxReport()
        while True:
            report = self.deliver_outbox(now=now)
            total.sent += report.sent
            total.failed += report.failed
            total.retry += report.retry
            total.released += report.released
            total.errors.extend(report.errors)
            total.budget_wait = report.budget_wait
            if report.sent + report.failed + report.retry == 0 or report.released:
                return total

    def send_now(
        self,
        kind: str,
        message: Message,
        *,
        subscriber_id: int | None = None,
        wait_seconds: float = 120.0,
    ) -> tuple[str, str]:
        """Queue one message and send it at once, for a person waiting for the answer.

        Waits (up to `wait_seconds`) while the relay budget is used up. Returns ("sent", ""),
        ("deferred", reason) when the relay said try later (the service retries it), or raises
        DeliveryError when it was refused or the relay could not be reached.
        """
        with session_scope(self.sessions) as session:
            (mail_id,) = self.queue(session, kind, [message], subscriber_id=subscriber_id)
        deadline = time.monotonic() + wait_seconds
        while True:
            report = self.deliver_outbox(ids=[mail_id], limit=1, unreachable="failed")
            if report.sent:
                return "sent", ""
            if report.retry:
                return "deferred", report.errors[0]
            if report.failed:
                reason = report.errors[0]
                if not reason.startswith("SMTP "):  # a reply, not a connection that failed
                    smtp = self.settings.smtp
                    reason = (f"SMTP {smtp.host}:{smtp.port} did not take the message for "
                              f"{message.recipient}: {reason}")
                raise DeliveryError(reason)
            if time.monotonic() + report.budget_wait > deadline:
                raise DeliveryError(
                    "the relay's rate limit (smtp.rate_per_*) is used up for now; the message is "
                    "queued and `mailer run` sends it when there is room"
                )
            time.sleep(max(report.budget_wait, 0.05))  # the budget's own wait, not a poll
