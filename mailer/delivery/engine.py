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
import concurrent.futures
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from mailer.campaigns import queries
from mailer.campaigns.models import Campaign
from mailer.compose import Recipient, RendererFactory
from mailer.database.connect import session_scope
from mailer.delivery import transport
from mailer.delivery.relay_budget import RelayBudget
from mailer.errors import DeliveryError
from mailer.kernel.clock import utcnow

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["DeliveryEngine", "EngineStats", "FailureHook"]

log = logging.getLogger("mailer.delivery")

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


@dataclass(slots=True)
class _Job:
    delivery_id: int
    campaign_id: int
    rcpt: str
    sender: str
    data: bytes
    attempts: int
    first_attempt_at: dt.datetime | None


@dataclass
class _Outcomes:
    sent: list[int] = field(default_factory=list)
    deferred: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    requeue: list[int] = field(default_factory=list)
    pause: dict[int, str] = field(default_factory=dict)
    # Failed here, not refused by the recipient's side (no SMTPUTF8 at our relay): not bounces.
    local: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.sent) + len(self.deferred) + len(self.failed) + len(self.requeue)


class DeliveryEngine:
    """One delivery worker. `await engine.run(stop)` until `stop` is set (or idle, if asked)."""

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
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.renderer_factory = renderer_factory or app.renderer_factory
        self.on_permanent_failures = on_permanent_failures
        self.clock = clock
        self.stats = EngineStats()
        self._renderers: dict[int, Any] = {}
        self._outcomes = _Outcomes()
        # Deliveries claimed by us and not yet recorded, with their campaign.
        self._held: dict[int, int] = {}
        self._connection_failures = 0
        self._last_connection_error = ""
        self._draining: set[int] = set()  # campaigns being paused: hand their jobs back
        self._renewed = clock()  # when we last extended the lease on what we hold
        self._budget = RelayBudget(self.settings.smtp)

    # -- database work, run on a thread ----------------------------------------------------

    def _claim(self, room: int) -> tuple[list[_Job], float]:
        """Claim and render up to `room` deliveries; (jobs, seconds to wait if rate-limited)."""
        now = self.clock()
        delivery = self.settings.delivery
        lease_expired = now - dt.timedelta(seconds=delivery.lease_seconds)
        with session_scope(self.app.sessions) as session:
            limit, wait = self._budget.room(session, now, min(room, delivery.batch_size))
            if limit <= 0:
                return [], wait
            ids = queries.claim_batch(session, self.worker_id, limit, now, lease_expired)
            # Rows whose lease ran out while we still hold them (a stalled flush): never ours
            # to send twice.
            ids = [i for i in ids if i not in self._held]
            if not ids:
                return [], 0.0
            rows = queries.recipient_rows(session, ids)
            skipped = [r["delivery_id"] for r in rows if not r["eligible"]]
            queries.mark_skipped(session, skipped, "no longer subscribed, suppressed or erased")
            jobs = self._render(session, [r for r in rows if r["eligible"]], now)
        self.stats.claimed += len(ids)
        self.stats.skipped += len(skipped)
        self._held.update((job.delivery_id, job.campaign_id) for job in jobs)
        return jobs, 0.0

    def _render(
        self, session: Session, rows: Sequence[dict[str, Any]], now: dt.datetime
    ) -> list[_Job]:
        """Build each claimed message. A campaign whose templates no longer compile is paused
        (its rows handed back); a message that cannot be built for one person fails alone."""
        jobs: list[_Job] = []
        broken: dict[int, str] = {}
        handed_back: list[int] = []
        unbuildable: list[dict[str, Any]] = []
        for row in rows:
            campaign_id = row["campaign_id"]
            if campaign_id in broken:
                handed_back.append(row["delivery_id"])
                continue
            renderer = self._renderers.get(campaign_id)
            if renderer is None:
                campaign = session.get(Campaign, campaign_id)
                assert campaign is not None
                try:
                    renderer = self.renderer_factory(
                        session, campaign, self.settings, self.app.signer
                    )
                except Exception as exc:  # e.g. an override template changed since creation
                    broken[campaign_id] = f"cannot render the campaign: {exc}"[:1000]
                    handed_back.append(row["delivery_id"])
                    continue
                self._renderers[campaign_id] = renderer
            recipient = Recipient(
                subscriber_id=row["subscriber_id"],
                email=row["email"],
                name=row["name"] or "",
                organisation=row["organisation"] or "",
                job_title=row["job_title"] or "",
                region=row["region"] or "",
                language=row["language"] or "nl",
                attributes=MappingProxyType(row["attributes"] or {}),
                delivery_id=row["delivery_id"],
            )
            try:
                sender = renderer.envelope_sender(recipient)
                data = renderer.message_bytes(recipient)
            except Exception as exc:
                unbuildable.append({"b_id": row["delivery_id"], "b_code": None,
                                    "b_error": f"cannot build the message: {exc}"[:1000],
                                    "b_first": now})
                continue
            jobs.append(
                _Job(
                    delivery_id=row["delivery_id"],
                    campaign_id=campaign_id,
                    rcpt=row["email"],
                    sender=sender,
                    data=data,
                    attempts=row["attempts"] or 0,
                    first_attempt_at=row["first_attempt_at"],
                )
            )
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

    def _flush(self, out: _Outcomes) -> list[int]:
        """Write a batch of outcomes in one transaction; ids of campaigns that finished."""
        now = self.clock()
        with session_scope(self.app.sessions) as session:
            queries.mark_sent(session, out.sent, now)
            queries.mark_deferred(session, out.deferred)
            queries.mark_failed(session, out.failed, now)
            bounced = [r for r in out.failed if r["b_id"] not in out.local]
            if bounced and self.on_permanent_failures is not None:
                self.on_permanent_failures(
                    session, [(r["b_id"], r["b_code"], r["b_error"]) for r in bounced]
                )
            queries.requeue(session, out.requeue, now + dt.timedelta(seconds=1))
            lease = self.settings.delivery.lease_seconds
            if self._held and (now - self._renewed).total_seconds() > lease / 4:
                queries.renew_lease(session, self.worker_id, list(self._held), now)
                self._renewed = now
            for campaign_id, reason in out.pause.items():
                queries.set_campaign_status(
                    session, campaign_id, "paused", from_statuses=("running",),
                    pause_reason=reason,
                )
            return queries.finish_done_campaigns(session, now)

    def _work_left(self, campaign_ids: Sequence[int] | None) -> tuple[int, int]:
        with session_scope(self.app.sessions) as session:
            return queries.work_left(session, self.clock(), campaign_ids)

    # -- outcomes --------------------------------------------------------------------------

    def _record(self, job: _Job, outcome: transport.Outcome) -> None:
        out = self._outcomes
        if outcome.kind == "sent":
            out.sent.append(job.delivery_id)
            self.stats.sent += 1
            return
        if outcome.kind == "connection":
            out.requeue.append(job.delivery_id)
            self.stats.requeued += 1
            return
        if outcome.local:
            out.local.add(job.delivery_id)
        now = self.clock()
        first = job.first_attempt_at or now
        deadline = first + dt.timedelta(hours=self.settings.delivery.retry_deadline_hours)
        code = outcome.code or 451
        error = f"{code} {outcome.message}".strip()[:1000]
        if outcome.kind == "temporary":
            wait = min(self.settings.delivery.retry_base_seconds * 2 ** job.attempts, 3600.0)
            retry_at = now + dt.timedelta(seconds=wait)
            if retry_at <= deadline:
                out.deferred.append(
                    {"b_id": job.delivery_id, "b_code": code, "b_error": error,
                     "b_next": retry_at, "b_first": first}
                )
                self.stats.deferred += 1
                return
            error = f"{error} (retry deadline passed)"
        out.failed.append({"b_id": job.delivery_id, "b_code": code, "b_error": error,
                           "b_first": first})
        self.stats.failed += 1

    # -- the pipeline ----------------------------------------------------------------------

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
        (deferred messages waiting for a later retry do not count)."""
        connections = max(1, min(self.settings.smtp.max_connections,
                                 self.settings.delivery.concurrency))
        queue: asyncio.Queue[_Job | None] = asyncio.Queue(
            maxsize=max(self.settings.delivery.batch_size, 2 * connections)
        )
        done = asyncio.Event()
        busy = [0]
        # Two threads for database work (a claim and a flush can overlap), reused for the whole
        # run: a fresh pool thread per call would each grow its own malloc arena.
        db_threads = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="delivery-db")
        loop = asyncio.get_running_loop()

        async def in_db(func: Callable[..., Any], *args: Any) -> Any:
            return await loop.run_in_executor(db_threads, func, *args)

        async def producer() -> None:
            while not stop.is_set() and not done.is_set():
                room = queue.maxsize - queue.qsize()
                jobs: list[_Job] = []
                wait = 0.0
                if room >= min(queue.maxsize // 2, self.settings.delivery.batch_size) or \
                        queue.empty():
                    try:
                        jobs, wait = await in_db(self._claim, max(room, 1))
                    except Exception:  # e.g. the database is briefly away: nothing was claimed
                        log.exception("claiming deliveries failed; trying again")
                        await _sleep(stop, 1.0)
                        continue
                for job in jobs:
                    await queue.put(job)
                if jobs:
                    continue
                if wait:
                    await _sleep(stop, wait)
                    continue
                if not queue.empty() or busy[0]:
                    await _sleep(stop, 0.02)
                    continue
                if until_idle:
                    await flush()
                    due, _later = await in_db(self._work_left, campaign_ids)
                    if due == 0 and not self._held:
                        done.set()
                        return
                    await _sleep(stop, min(idle_seconds, 0.2))
                else:
                    await _sleep(stop, idle_seconds)

        async def sender(number: int) -> None:
            client: Any = None
            try:
                while True:
                    job = await queue.get()
                    if job is None:
                        return
                    busy[0] += 1
                    try:
                        if job.campaign_id in self._draining:
                            self._record(job, transport.Outcome("connection"))
                            continue
                        if client is None:
                            try:
                                client = await transport.connect(self.settings)
                            except DeliveryError as exc:
                                self._connection_failed(job, str(exc))
                                await _sleep(stop, self._backoff())
                                continue
                        try:
                            outcome = await transport.send_one(
                                client, job.sender, job.rcpt, job.data
                            )
                        except Exception as exc:  # a bug or a surprise: never lose the job
                            log.exception("sending delivery %s failed", job.delivery_id)
                            outcome = transport.Outcome("connection", None, repr(exc))
                        if outcome.kind == "connection":
                            client.close()
                            client = None
                            self._connection_failed(job, outcome.message)
                            await _sleep(stop, self._backoff())
                            continue
                        self._connection_failures = 0
                        self._record(job, outcome)
                        if len(self._outcomes) >= 500:
                            flush_now.set()
                    finally:
                        busy[0] -= 1
            finally:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.quit(), 2)
                    client.close()

        flush_lock = asyncio.Lock()
        flush_now = asyncio.Event()

        async def flush() -> None:
            async with flush_lock:
                if not len(self._outcomes) and not self._outcomes.pause:
                    return
                out, self._outcomes = self._outcomes, _Outcomes()
                try:
                    finished = await in_db(self._flush, out)
                except Exception:
                    # Keep the outcomes and write them with the next flush: dropping them would
                    # leave sent messages `sending`, to be sent again after the lease.
                    log.exception("recording %d outcomes failed; trying again", len(out))
                    self._outcomes = _merge(out, self._outcomes)
                    await _sleep(stop, 0.5)
                    return
                for ids in (out.sent, out.requeue, [r["b_id"] for r in out.deferred],
                            [r["b_id"] for r in out.failed]):
                    for delivery_id in ids:
                        self._held.pop(delivery_id, None)
                if self._draining:
                    # A paused campaign's jobs are all handed back: it may be claimed again
                    # once resumed.
                    still = set(self._held.values())
                    self._draining.intersection_update(still)
                for campaign_id in finished:
                    self._renderers.pop(campaign_id, None)
                    log.info("campaign %s finished", campaign_id)
                if progress is not None:
                    progress(self.stats)

        async def recorder() -> None:
            while not (stop.is_set() or done.is_set()):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(flush_now.wait(), 0.1)
                flush_now.clear()
                await flush()

        senders = [asyncio.create_task(sender(n)) for n in range(connections)]
        recorder_task = asyncio.create_task(recorder())
        try:
            await producer()
        finally:
            # Hand back what is still queued, let senders finish the message in hand, record all.
            while not queue.empty():
                job = queue.get_nowait()
                if job is not None:
                    self._outcomes.requeue.append(job.delivery_id)
            for _ in senders:
                await queue.put(None)
            await asyncio.gather(*senders, return_exceptions=True)
            done.set()
            await recorder_task
            await flush()
            db_threads.shutdown(wait=True)
        return self.stats

    def _backoff(self) -> float:
        return min(0.1 * 2 ** max(self._connection_failures - 1, 0), 5.0)

    def _connection_failed(self, job: _Job, reason: str) -> None:
        """Hand the message back untried; after too many failures in a row, pause campaigns."""
        self._connection_failures += 1
        self._last_connection_error = reason
        self._outcomes.requeue.append(job.delivery_id)
        self.stats.requeued += 1
        limit = self.settings.delivery.max_connection_failures
        log.warning("connection to the relay failed (%d/%d): %s",
                    self._connection_failures, limit, reason)
        if self._connection_failures >= limit:
            smtp = self.settings.smtp
            why = (f"{self._connection_failures} connection failures in a row to "
                   f"{smtp.host}:{smtp.port}: {reason}")
            self._outcomes.pause[job.campaign_id] = why
            self._draining.add(job.campaign_id)
            self.stats.paused.append(job.campaign_id)
            self._connection_failures = 0


def _merge(first: _Outcomes, second: _Outcomes) -> _Outcomes:
    return _Outcomes(
        sent=first.sent + second.sent,
        deferred=first.deferred + second.deferred,
        failed=first.failed + second.failed,
        requeue=first.requeue + second.requeue,
        pause={**first.pause, **second.pause},
    )


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

