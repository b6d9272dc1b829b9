"""The delivery engine: claim deliveries in batches, render, send over pooled SMTP connections,
record each outcome in small batched transactions.

A pipeline of three kinds of asyncio tasks in one worker process:

    producer   claims a batch (a DB thread), loads recipients in one joined query, renders each
               message, and puts them on a bounded queue; claims again while the queue drains
    senders    one per SMTP connection (at most smtp.max_connections), each reusing its
               connection, reconnecting when it drops
    recorder   flushes outcomes every ~100 ms (or 500 outcomes) in one transaction

A delivery is `sending` from its claim until the recorder writes its outcome. A crash loses at most
the outcomes not yet flushed: those rows stay `sending` and are claimed again once their lease
(delivery.lease_seconds) expires; so a crash resends at most what was in flight.

Relay limits (smtp.rate_per_second/minute/hour/day) hold across every worker sharing the
database: a claim counts what was sent within each window plus what is in flight anywhere, under
a lock (PostgreSQL advisory lock; SQLite's single writer), and claims only what fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mailer.campaigns import queries
from mailer.campaigns.models import Campaign
from mailer.compose import Recipient, RendererFactory
from mailer.database.connect import session_scope
from mailer.delivery import transport
from mailer.delivery.db_threads import DbThreads
from mailer.delivery.failure_log import FailureLog, one_line
from mailer.delivery.presence import WorkerPresence
from mailer.delivery.relay_budget import RelayBudget
from mailer.delivery.retry import judge
from mailer.errors import DeliveryError
from mailer.kernel.clock import utcnow

if TYPE_CHECKING:
    from mailer.app import App
    from mailer.settings import Settings

__all__ = ["DeliveryEngine", "EngineStats", "FailureHook"]

log = logging.getLogger("mailer.delivery")

# No statement of the engine waits longer than this (a locked table, a stalled server).
_STATEMENT_SECONDS = 30.0
# How often the campaigns in hand are checked for a pause (what `campaigns pause` waits for).
_STATUS_EVERY = 0.25

#: What the engine tells of messages that failed for good: (delivery_id, code, message), in
#: the transaction that records them. The composition root hands in the bounce policy's.
FailureHook = Callable[[Session, list[tuple[int, int, str]]], Any]


@dataclass
class EngineStats:
    """Counts of what this worker did, for progress bars and logs."""

    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    requeued: int = 0
    paused: list[int] = field(default_factory=list)
    # Jobs not sent because our hold on them could have lapsed (stalled past the lease).
    fenced: int = 0
    # Outcomes that could not be recorded before stopping (database away), or cut off.
    unrecorded: int = 0


@dataclass(slots=True)
class _Job:
    delivery_id: int
    campaign_id: int
    rcpt: str
    sender: str
    data: bytes
    attempts: int
    first_attempt_at: dt.datetime | None
    worker: str  # the name it was claimed under: the fencing token its outcome is written with
    claimed_mono: float  # time.monotonic() before the claim began


@dataclass
class _Outcomes:
    worker: str
    sent: list[int] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    requeue: list[int] = field(default_factory=list)
    pause: dict[int, str] = field(default_factory=dict)
    outage: str = ""  # the relay is unreachable: pause outage_campaigns with this reason
    outage_campaigns: set[int] = field(default_factory=set)
    # Failed here, not refused by the recipient's side (no SMTPUTF8 at our relay): not bounces.
    local: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.sent) + len(self.deferred) + len(self.failed) + len(self.requeue)

    def ids(self) -> list[int]:
        return [*self.sent, *self.requeue, *(r["b_id"] for r in self.deferred),
                *(r["b_id"] for r in self.failed)]


class DeliveryEngine:
    """One delivery worker. `await engine.run(stop)` until `stop` is set (or idle, if asked).

    The engine keeps what one worker knows (what it holds, its lease, its standing among the
    workers) and does the database work on a thread; `_Pipeline` runs the asyncio tasks.
    """

    def __init__(
        self,
        app: App,
        *,
        worker_id: str | None = None,
        renderer_factory: RendererFactory | None = None,
        on_permanent_failures: FailureHook | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.app = app
        self.settings = app.settings
        self._base_name = worker_id or \
            f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._incarnation = 0
        self.worker_id = self._base_name
        self.renderer_factory = renderer_factory or app.renderer_factory
        self.on_permanent_failures = on_permanent_failures
        self.clock = clock
        self.stats = EngineStats()
        self._renderers: dict[int, Any] = {}
        self._outcomes: dict[str, _Outcomes] = {}
        # Deliveries claimed by us and not yet recorded, with their campaign.
        self._held: dict[int, int] = {}
        self._connection_failures = 0
        self._draining: set[int] = set()  # campaigns paused: hand their jobs back
        self._budget = RelayBudget(self.settings.smtp)
        self._faults = FailureLog(log)
        lease = self.settings.delivery.lease_seconds
        self._lease = lease
        # Fencing on this side: a job is sent only while our lease on it surely holds (its
        # claim or our last renewal, plus the lease, minus the time one send may take).
        self._margin = min(self.settings.smtp.timeout_seconds, lease / 2)
        self._renewed_mono = 0.0
        self._void_before = 0.0  # jobs claimed before this may be someone else's now
        self._next = {"beat": 0.0, "renew": 0.0, "status": 0.0, "reap": 0.0}
        self._presence = WorkerPresence(app.engine, app.sessions, self.worker_id, lease)

    # -- standing among the workers (database work, on a thread) ---------------------------

    def _register(self) -> None:
        self._presence.register(self.clock())
        self._next["beat"] = time.monotonic() + self._beat_every()

    def _beat_every(self) -> float:
        return max(min(self._lease / 4, 10.0), 0.05)

    def _beat(self) -> None:
        """Heartbeat; if we lost our standing, what we hold is void and we start afresh under a
        new name (a new fencing token: late records of the old one cannot touch new claims)."""
        self._next["beat"] = time.monotonic() + self._beat_every()
        if self._presence.beat(self.clock()):
            return
        self._void_before = time.monotonic()
        self._incarnation += 1
        old = self.worker_id
        self.worker_id = f"{self._base_name}#{self._incarnation}"
        self._faults.failed("standing", f"worker {old} lost its registration (its database "
                            f"connection broke or it was taken for dead); what it held is "
                            f"handed over, continuing as {self.worker_id}")
        self._presence.close()
        self._presence = WorkerPresence(self.app.engine, self.app.sessions, self.worker_id,
                                        self._lease)
        self._presence.register(self.clock())

    def _still_ours(self, job: _Job) -> bool:
        if job.claimed_mono < self._void_before:
            return False
        held_since = max(job.claimed_mono, self._renewed_mono)
        return time.monotonic() < held_since + self._lease - self._margin

    def _housekeeping(self, session: Session, now: dt.datetime) -> None:
        """In the claim's transaction, at most once a second: hand back the rows of dead
        workers, and resume campaigns whose relay-outage pause is over."""
        mono = time.monotonic()
        if mono < self._next["reap"]:
            return
        self._next["reap"] = mono + 1.0
        for name, count, why in self._presence.release_dead(session, now):
            log.warning("worker %s is dead (%s): %d deliveries it held are handed back",
                        name, why, count)
        for campaign_id in queries.resume_after_outage(session, now):
            self._faults.failed(f"resume:{campaign_id}", f"campaign {campaign_id}: trying the "
                                "relay again after an outage pause", level=logging.INFO)

    # -- claiming (database work, on a thread) ---------------------------------------------

    def _claim(self, room: int) -> tuple[list[_Job], float]:
        """Claim and render up to `room` deliveries; (jobs, seconds to wait if rate-limited)."""
        mono = time.monotonic()
        delivery = self.settings.delivery
        with session_scope(self.app.sessions) as session:
            queries.bound_statement_time(session, _STATEMENT_SECONDS)
            self._budget.lock(session)
            now = self.clock()
            lease_expired = now - dt.timedelta(seconds=delivery.lease_seconds)
            self._housekeeping(session, now)
            limit, wait = self._budget.room(session, now, min(room, delivery.batch_size),
                                            lease_expired)
            if limit <= 0:
                self._faults.failed("budget", f"nothing claimed: {self._budget.full}; "
                                    "waiting for the window to move", level=logging.INFO)
                return [], wait
            self._faults.ok("budget", None)
            ids = queries.claim_batch(session, self.worker_id, limit, now, lease_expired)
            # Rows whose lease ran out while we still hold them (a stalled flush): never ours
            # to send twice.
            ids = [i for i in ids if i not in self._held]
            if not ids:
                return [], 0.0
            rows = queries.recipient_rows(session, ids)
            skipped = [r["delivery_id"] for r in rows if not r["eligible"]]
            queries.mark_skipped(session, skipped, "no longer subscribed, suppressed or erased")
            jobs = self._render(session, [r for r in rows if r["eligible"]], now, mono)
        self.stats.claimed += len(ids)
        self.stats.skipped += len(skipped)
        self._held.update((job.delivery_id, job.campaign_id) for job in jobs)
        return jobs, 0.0

    def _render(
        self, session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime,
        claimed_mono: float,
    ) -> list[_Job]:
        """Build each claimed message. A campaign whose templates no longer compile is paused
        (its rows handed back); a message that cannot be built for one person fails alone."""
        jobs: list[_Job] = []
        broken: dict[int, str] = {}
        handed_back: list[int] = []
        unbuildable: list[dict[str, Any]] = []
        for row in rows:
            renderer = self._renderer(session, row["campaign_id"], broken)
            if renderer is None:
                handed_back.append(row["delivery_id"])
                continue
            try:
                recipient = _recipient(row)
                sender = renderer.envelope_sender(recipient)
                data = renderer.message_bytes(recipient)
            except Exception as exc:
                unbuildable.append({"b_id": row["delivery_id"], "b_code": None,
                                    "b_error": f"cannot build the message: {exc}"[:1000],
                                    "b_first": now})
                continue
            jobs.append(_Job(row["delivery_id"], row["campaign_id"], row["email"], sender, data,
                             row["attempts"] or 0, row["first_attempt_at"], self.worker_id,
                             claimed_mono))
        if broken or handed_back:
            queries.requeue(session, handed_back, now)
            for campaign_id, reason in broken.items():
                log.error("campaign %s paused: %s", campaign_id, reason)
                queries.set_campaign_status(session, campaign_id, "paused",
                                            from_statuses=("running",), pause_reason=reason)
        if unbuildable:
            queries.mark_failed(session, unbuildable, now)
            self.stats.failed += len(unbuildable)
        return jobs

    def _renderer(self, session: Session, campaign_id: int, broken: dict[int, str]) -> Any:
        """The campaign's renderer, built once; None (and the reason in `broken`) if its
        templates no longer compile (e.g. an override template changed since creation)."""
        if campaign_id in broken:
            return None
        renderer = self._renderers.get(campaign_id)
        if renderer is None:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            try:
                renderer = self.renderer_factory(session, campaign, self.settings,
                                                 self.app.signer)
            except Exception as exc:
                broken[campaign_id] = f"cannot render the campaign: {exc}"[:1000]
                return None
            self._renderers[campaign_id] = renderer
        return renderer

    # -- recording (database work, on a thread) --------------------------------------------

    def _flush(self, batches: list[_Outcomes]) -> _Flushed:
        """Write batches of outcomes in one transaction, renew our lease, pause what must be
        paused, and read the state of the campaigns we hold."""
        mono = time.monotonic()
        now = self.clock()
        flushed = _Flushed()
        with session_scope(self.app.sessions) as session:
            queries.bound_statement_time(session, _STATEMENT_SECONDS)
            written: set[int] = set()
            for out in batches:
                self._write(session, out, now, flushed)
                written.update(out.ids())
            if self._held and mono >= self._next["renew"]:
                self._renew(session, [i for i in self._held if i not in written], now, mono)
            if self._held and mono >= self._next["status"]:
                self._next["status"] = mono + _STATUS_EVERY
                statuses = queries.campaign_statuses(session, set(self._held.values()))
                flushed.stopped = {cid for cid, st in statuses.items() if st != "running"}
            flushed.finished = queries.finish_done_campaigns(session, now)
        return flushed

    def _write(self, session: Session, out: _Outcomes, now: dt.datetime,
               flushed: _Flushed) -> None:
        worker = out.worker  # the fence: only rows this worker name still holds change
        queries.mark_sent(session, out.sent, now, worker=worker)
        queries.mark_deferred(session, out.deferred, worker=worker)
        queries.mark_failed(session, out.failed, now, worker=worker)
        # Failed here (e.g. no SMTPUTF8 at our relay), not refused by the recipient's side:
        # not bounces.
        bounced = [r for r in out.failed if r["b_id"] not in out.local]
        if bounced and self.on_permanent_failures is not None:
            self.on_permanent_failures(
                session, [(r["b_id"], r["b_code"], r["b_error"]) for r in bounced]
            )
        queries.requeue(session, out.requeue, now + dt.timedelta(seconds=1), worker=worker)
        for campaign_id, reason in out.pause.items():
            queries.set_campaign_status(session, campaign_id, "paused",
                                        from_statuses=("running",), pause_reason=reason)
        if out.outage:
            delivery = self.settings.delivery
            resumes = queries.pause_for_outage(
                session, out.outage_campaigns, out.outage, now,
                delivery.outage_retry_seconds, delivery.outage_retry_max_seconds)
            flushed.outage_paused.update(resumes)
        sent_campaigns = {self._held[i] for i in out.sent if i in self._held}
        flushed.outage_over.extend(queries.clear_outage(session, sent_campaigns))

    def _renew(self, session: Session, held: list[int], now: dt.datetime, mono: float) -> None:
        self._next["renew"] = mono + self._lease / 4
        renewed = queries.renew_lease(session, self.worker_id, held, now)
        if renewed == len(held):
            self._renewed_mono = mono
        else:
            # Some rows are no longer ours (taken over, or handed back as a dead worker's): we
            # cannot tell which, so none of what we hold is sent; the fence keeps records off.
            self._void_before = mono
            log.warning("worker %s: %d of %d deliveries it held were taken over; it sends none "
                        "of them", self.worker_id, len(held) - renewed, len(held))

    def _work_left(self, campaign_ids: Sequence[int] | None) -> tuple[int, int]:
        with session_scope(self.app.sessions) as session:
            return queries.work_left(session, self.clock(), campaign_ids)

    # -- outcomes (on the event loop) ------------------------------------------------------

    def _out(self, job: _Job) -> _Outcomes:
        out = self._outcomes.get(job.worker)
        if out is None:
            out = self._outcomes[job.worker] = _Outcomes(job.worker)
        return out

    def _hand_back(self, job: _Job) -> None:
        """Back to the queue untried (pause, shutdown, connection trouble, lease gone)."""
        self._out(job).requeue.append(job.delivery_id)
        self.stats.requeued += 1

    def _record(self, job: _Job, outcome: transport.Outcome) -> None:
        out = self._out(job)
        if outcome.kind == "sent":
            out.sent.append(job.delivery_id)
            self.stats.sent += 1
            return
        if outcome.local:
            out.local.add(job.delivery_id)
        # The retry rule one-off mail follows too (delivery.retry): backoff, deadline, codes.
        verdict = judge(outcome, self.settings.delivery, attempts=job.attempts,
                        first_attempt_at=job.first_attempt_at, now=self.clock())
        row = {"b_id": job.delivery_id, "b_code": verdict.code, "b_error": verdict.error,
               "b_first": verdict.first_at}
        if verdict.status == "retry":
            out.deferred.append({**row, "b_next": verdict.next_at})
            self.stats.deferred += 1
            return
        out.failed.append(row)
        self.stats.failed += 1

    def _pending(self) -> int:
        return sum(len(out) + len(out.pause) + bool(out.outage)
                   for out in self._outcomes.values())

    def _backoff(self) -> float:
        return min(0.1 * 2 ** max(self._connection_failures - 1, 0), 5.0)

    def _connection_ok(self) -> None:
        if self._connection_failures or self._faults.active("relay"):
            self._connection_failures = 0
            self._faults.ok("relay", "the relay takes mail again")

    def _connection_failed(self, job: _Job, reason: str) -> None:
        """Hand the message back untried; after too many failures in a row, pause the
        campaigns in hand (they resume by themselves, with backoff)."""
        self._connection_failures += 1
        self._hand_back(job)
        smtp = self.settings.smtp
        self._faults.failed("relay", f"cannot reach the relay {smtp.host}:{smtp.port}: "
                            f"{reason}; messages are handed back untried")
        limit = self.settings.delivery.max_connection_failures
        if self._connection_failures < limit:
            return
        campaigns = {job.campaign_id, *self._held.values()} - self._draining
        if campaigns:
            out = self._out(job)
            out.outage = (f"relay unreachable: {self._connection_failures} connection "
                          f"failures in a row to {smtp.host}:{smtp.port}: {reason}")
            out.outage_campaigns |= campaigns
            self._draining |= campaigns
            self.stats.paused.extend(sorted(campaigns))
        self._connection_failures = 0

    # -- running ---------------------------------------------------------------------------

    async def run(
        self,
        stop: asyncio.Event,
        *,
        until_idle: bool = False,
        campaign_ids: Sequence[int] | None = None,
        idle_seconds: float = 1.0,
        progress: Callable[[EngineStats], None] | None = None,
    ) -> EngineStats:
        """Deliver until `stop` is set; with `until_idle`, also return once nothing is due
        (deferred messages waiting for a later retry, and paused campaigns, do not count)."""
        pipeline = _Pipeline(self, stop, until_idle=until_idle, campaign_ids=campaign_ids,
                             idle_seconds=idle_seconds, progress=progress)
        await pipeline.run()
        return self.stats


@dataclass
class _Flushed:
    finished: list[int] = field(default_factory=list)
    stopped: set[int] = field(default_factory=set)  # held campaigns no longer running
    outage_paused: dict[int, dt.datetime] = field(default_factory=dict)
    outage_over: list[tuple[int, dt.datetime]] = field(default_factory=list)


def _recipient(row: dict[str, Any]) -> Recipient:
    return Recipient(
        subscriber_id=row["subscriber_id"],
        public_id=row["public_id"],
        email=row["email"],
        name=row["name"] or "",
        organisation=row["organisation"] or "",
        job_title=row["job_title"] or "",
        region=row["region"] or "",
        language=row["language"] or "nl",
        attributes=MappingProxyType(row["attributes"] or {}),
        delivery_id=row["delivery_id"],
    )


# What `_PooledConnection.send` answers when the fence says no before a retry.
_NOT_OURS = transport.Outcome("not-ours")


class _PooledConnection:
    """One sender's connection to the relay, reused from message to message.

    A relay drops connections that sit idle (Exchange Online, Postfix after its timeout): a
    reused connection that turns out dead is reconnected and the message tried once more on
    the fresh one; only a failure on a fresh connection counts as the relay failing.
    """

    def __init__(self, settings: Settings, faults: FailureLog) -> None:
        self.settings = settings
        self.faults = faults
        self.client: Any = None

    async def send(self, job: _Job, may_send: Callable[[], bool]) -> transport.Outcome:
        """The outcome of sending `job`; `may_send` is asked before each try (a retry after
        a stall must not send what we may no longer hold)."""
        outcome = transport.Outcome("connection", None, "not connected")
        for _attempt in range(2):
            if not may_send():
                return _NOT_OURS
            reused = self.client is not None
            if not reused:
                try:
                    self.client = await transport.connect(self.settings)
                except DeliveryError as exc:
                    return transport.Outcome("connection", None, str(exc))
            outcome = await self._send_on(self.client, job)
            if outcome.kind != "connection":
                return outcome
            self.client.close()
            self.client = None
            if not reused:
                return outcome
        return outcome

    async def _send_on(self, client: Any, job: _Job) -> transport.Outcome:
        try:
            return await transport.send_one(client, job.sender, job.rcpt, job.data)
        except Exception as exc:  # a bug or a surprise: never lose the job
            self.faults.failed(f"send:{type(exc).__name__}",
                               f"sending delivery {job.delivery_id} failed unexpectedly: "
                               f"{one_line(exc)}", level=logging.ERROR, exc=exc)
            return transport.Outcome("connection", None, repr(exc))

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.quit(), 2)
            self.client.close()
            self.client = None


class _Pipeline:
    """The asyncio side of one run: a producer (claims), senders (one per connection) and a
    recorder (flushes outcomes), sharing one bounded queue."""

    def __init__(self, engine: DeliveryEngine, stop: asyncio.Event, *, until_idle: bool,
                 campaign_ids: Sequence[int] | None, idle_seconds: float,
                 progress: Callable[[EngineStats], None] | None) -> None:
        self.e = engine
        self.settings = engine.settings
        self.stop = stop
        self.until_idle = until_idle
        self.campaign_ids = campaign_ids
        self.idle_seconds = idle_seconds
        self.progress = progress
        self.connections = max(1, min(self.settings.smtp.max_connections,
                                      self.settings.delivery.concurrency))
        self.queue: asyncio.Queue[_Job | None] = asyncio.Queue(
            maxsize=max(self.settings.delivery.batch_size, 2 * self.connections)
        )
        self.done = asyncio.Event()
        self.busy = 0
        self.db = DbThreads(2)
        self.flush_lock = asyncio.Lock()
        self.flush_now = asyncio.Event()
        self.on_wire = 0
        self.claim_interrupted = False

    async def run(self) -> None:
        try:
            if not await self._register():
                return
            senders = [asyncio.create_task(self.send_loop()) for _ in range(self.connections)]
            recorder = asyncio.create_task(self.record_loop())
            try:
                await self.produce()
            finally:
                await self.shutdown(senders, recorder)
        finally:
            self.db.close()

    async def _register(self) -> bool:
        while not self.stop.is_set():
            try:
                await self.db.run(self.e._register)
                self.e._faults.ok("database", "the database answers again")
                return True
            except Exception as exc:
                self._db_failed("registering the worker", exc)
                await _sleep(self.stop, 1.0)
        return False

    def _db_failed(self, doing: str, exc: Exception) -> None:
        expected = isinstance(exc, (DBAPIError, OSError))
        self.e._faults.failed("database", f"{doing} failed: {one_line(exc)}; trying again",
                              level=logging.WARNING if expected else logging.ERROR,
                              exc=None if expected else exc)

    # -- producer --------------------------------------------------------------------------

    async def produce(self) -> None:
        while not self.stop.is_set() and not self.done.is_set():
            jobs, wait = await self._claim_if_room()
            for job in jobs:
                await self.queue.put(job)
            if jobs:
                continue
            if wait:
                await _sleep(self.stop, wait)
            elif not self.queue.empty() or self.busy:
                await _sleep(self.stop, 0.02)
            elif self.until_idle:
                await self._finish_if_idle()
            else:
                await _sleep(self.stop, self.idle_seconds)

    async def _claim_if_room(self) -> tuple[list[_Job], float]:
        room = self.queue.maxsize - self.queue.qsize()
        if room < min(self.queue.maxsize // 2, self.settings.delivery.batch_size) and \
                not self.queue.empty():
            return [], 0.0
        try:
            claimed = await self._unless_stopped(self.e._claim, max(room, 1))
        except Exception as exc:  # e.g. the database is briefly away: nothing was claimed
            self._db_failed("claiming deliveries", exc)
            return [], 1.0
        if claimed is None:  # stopping: a claim still stuck in the database is left to it
            self.claim_interrupted = True
            return [], 0.0
        self.e._faults.ok("database", "the database answers again")
        jobs, wait = claimed
        return jobs, wait

    async def _unless_stopped(self, func: Callable[..., Any], *args: Any) -> Any:
        """`func` on a database thread, or None if `stop` comes first (a stalled database
        must not hold up stopping; the call may still finish on its thread)."""
        call = asyncio.ensure_future(self.db.run(func, *args))
        stopping = asyncio.ensure_future(self.stop.wait())
        await asyncio.wait([call, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not call.done():
            call.cancel()
            return None
        return call.result()

    async def _finish_if_idle(self) -> None:
        await self.flush()
        try:
            left = await self._unless_stopped(self.e._work_left, self.campaign_ids)
        except Exception as exc:
            self._db_failed("counting the work left", exc)
            await _sleep(self.stop, 1.0)
            return
        if left is None:
            return
        if left[0] == 0 and not self.e._held:
            self.done.set()
            return
        await _sleep(self.stop, min(self.idle_seconds, 0.2))

    # -- senders ---------------------------------------------------------------------------

    async def send_loop(self) -> None:
        connection = _PooledConnection(self.settings, self.e._faults)
        try:
            while (job := await self.queue.get()) is not None:
                self.busy += 1
                try:
                    await self._deliver(connection, job)
                finally:
                    self.busy -= 1
        finally:
            await connection.close()

    async def _deliver(self, connection: _PooledConnection, job: _Job) -> None:
        e = self.e
        if job.campaign_id in e._draining or self.stop.is_set():
            e._hand_back(job)
            return
        if not e._still_ours(job):
            # Our lease may have run out (we were stalled) and another worker may have it.
            e.stats.fenced += 1
            e._hand_back(job)
            return
        self.on_wire += 1
        try:
            outcome = await connection.send(job, lambda: e._still_ours(job))
        finally:
            self.on_wire -= 1
        if outcome is _NOT_OURS:
            e.stats.fenced += 1
            e._hand_back(job)
            return
        if outcome.kind == "connection":
            e._connection_failed(job, outcome.message)
            await _sleep(self.stop, e._backoff())
            return
        e._connection_ok()
        e._record(job, outcome)
        if e._pending() >= 500:
            self.flush_now.set()

    # -- recorder --------------------------------------------------------------------------

    async def record_loop(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_now.wait(), 0.1)
            self.flush_now.clear()
            await self._beat_if_due()
            await self.flush()

    async def _beat_if_due(self) -> None:
        if time.monotonic() < self.e._next["beat"]:
            return
        try:
            await self.db.run(self.e._beat)
        except Exception as exc:
            self._db_failed("the worker heartbeat", exc)

    async def flush(self) -> bool:
        """Write what is pending; False if the database did not take it (kept for later)."""
        e = self.e
        async with self.flush_lock:
            due = any(time.monotonic() >= e._next[k] for k in ("renew", "status"))
            if not e._pending() and not (e._held and due):
                return True
            batches = list(e._outcomes.values())
            e._outcomes = {}
            try:
                flushed = await self.db.run(e._flush, batches)
            except asyncio.CancelledError:
                # Stopping while the database stalls: keep them for the last try (writing a
                # batch twice changes nothing: the fence needs the row still `sending`).
                for batch in batches:
                    e._outcomes[batch.worker] = _merge(batch, e._outcomes.get(batch.worker))
                raise
            except Exception as exc:
                # Keep the outcomes and write them with the next flush: dropping them would
                # leave sent messages `sending`, to be sent again.
                self._db_failed(f"recording {sum(len(b) for b in batches)} outcomes", exc)
                for batch in batches:
                    e._outcomes[batch.worker] = _merge(batch, e._outcomes.get(batch.worker))
                await _sleep(self.stop, 0.5)
                return False
            e._faults.ok("database", "the database answers again")
            self._after_flush(batches, flushed)
            return True

    def _after_flush(self, batches: list[_Outcomes], flushed: _Flushed) -> None:
        e = self.e
        for batch in batches:
            for delivery_id in batch.ids():
                e._held.pop(delivery_id, None)
        e._draining |= flushed.stopped
        if e._draining:
            # A paused campaign's jobs are all handed back: it may be claimed again once
            # resumed.
            e._draining.intersection_update(set(e._held.values()))
        for campaign_id, at in sorted(flushed.outage_paused.items()):
            log.warning("campaign %s paused: the relay is unreachable; it tries again by "
                        "itself at %s UTC", campaign_id, f"{at:%H:%M:%S}")
        for campaign_id, since in flushed.outage_over:
            log.warning("campaign %s: the relay takes mail again (unreachable since %s UTC)",
                        campaign_id, f"{since:%H:%M:%S}")
        for campaign_id in flushed.finished:
            e._renderers.pop(campaign_id, None)
            log.info("campaign %s finished", campaign_id)
        if self.progress is not None:
            self.progress(e.stats)

    # -- stopping --------------------------------------------------------------------------

    async def shutdown(self, senders: list[asyncio.Task[None]],
                       recorder: asyncio.Task[None]) -> None:
        """Hand back what is queued, let senders finish the message in hand (bounded by the
        SMTP timeout), record everything (bounded by delivery.shutdown_seconds), and say what
        could not be recorded."""
        while not self.queue.empty():
            job = self.queue.get_nowait()
            if job is not None:
                self.e._hand_back(job)
        for _ in senders:
            await self.queue.put(None)
        _done, late = await asyncio.wait(senders, timeout=self.settings.smtp.timeout_seconds + 2)
        for task in late:
            task.cancel()
        self.done.set()
        recorder.cancel()  # it may be waiting on a stalled database; the last flush is below
        await asyncio.gather(recorder, *senders, return_exceptions=True)
        deadline = time.monotonic() + self.settings.delivery.shutdown_seconds
        while self.e._pending() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), max(deadline - time.monotonic(), 0.1))
        self._report_left(len(late))
        forget = not self.e.stats.unrecorded and not self.claim_interrupted
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.db.run(lambda: self.e._presence.close(forget=forget)), 5)

    def _report_left(self, cut_off: int) -> None:
        e = self.e
        unrecorded = sum(len(out) for out in e._outcomes.values())
        e.stats.unrecorded = unrecorded + cut_off
        if unrecorded:
            sent = sum(len(out.sent) for out in e._outcomes.values())
            log.error("stopping with %d outcomes not recorded (%d of them sent): the database "
                      "did not answer within %s s; those deliveries stay `sending` until this "
                      "worker is seen gone, then are sent again", unrecorded, sent,
                      self.settings.delivery.shutdown_seconds)
        if cut_off:
            log.error("stopping: %d messages were cut off on the wire (the relay did not "
                      "answer in time); they are sent again once this worker is seen gone",
                      cut_off)


def _merge(first: _Outcomes, second: _Outcomes | None) -> _Outcomes:
    if second is None:
        return first
    return _Outcomes(
        worker=first.worker,
        sent=first.sent + second.sent,
        deferred=first.deferred + second.deferred,
        failed=first.failed + second.failed,
        requeue=first.requeue + second.requeue,
        pause={**first.pause, **second.pause},
        outage=second.outage or first.outage,
        outage_campaigns=first.outage_campaigns | second.outage_campaigns,
        local=first.local | second.local,
    )


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
