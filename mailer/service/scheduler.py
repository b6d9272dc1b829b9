"""The long-running service behind `mailer run`: scheduler, delivery engine and other parts.

Scheduled sends: the campaign row (status `scheduled`, scheduled_at) is the truth. APScheduler 3
keeps one date job per scheduled campaign in an in-memory job store, rebuilt from the campaign
rows when the service starts; a job only wakes the service, which then starts due campaigns with
a conditional UPDATE (never twice). Nothing is stored in the database: APScheduler's SQLAlchemy
job store keeps jobs as pickles, and unpickling a row that someone planted there runs their code.
On every poll (delivery.poll_seconds) and every wake-up the service:

1. syncs the job store with the scheduled campaigns (a campaign scheduled by `mailer campaigns
   schedule` in another process gets its job within one poll; at start-up every one does);
2. starts every scheduled campaign whose time has come, if at most delivery.misfire_grace_minutes
   late, else marks it `missed` and reports it (a send whose time passed while the service was
   down is never silently dropped, never sent twice);
3. does the due work the composition root lists (App.due_work: meeting reminders, owed mail).

The delivery engine runs beside it all the time and sends whatever is running.

Nothing here blocks the event loop on the database: the polls run on a daemon thread, and
APScheduler runs as a BackgroundScheduler on its own thread (its job store in memory);
a job only sets the service's wake-up event through the loop. So a stalled database
stalls neither sending already claimed work nor SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from mailer.campaigns import queries
from mailer.database.connect import session_scope
from mailer.delivery.db_threads import DbThreads
from mailer.delivery.engine import EngineStats
from mailer.delivery.failure_log import FailureLog, one_line
from mailer.kernel.clock import utcnow
from mailer.usecases import campaigns as campaign_usecases

if TYPE_CHECKING:
    from mailer.app import App

__all__ = [
    "Service",
    "RunReport",
    "run_once",
    "run_forever",
    "run_workers",
    "schedule_wakeup",
    "install_signal_handlers",
]

log = logging.getLogger("mailer.service.scheduler")

# The running service of this process, for job wake-ups (the job names its function by import
# path, as APScheduler's job stores expect, so it cannot carry the service object itself).
_ACTIVE: list[Service] = []


def wake(reason: str = "") -> None:
    """The function every stored job runs (on APScheduler's thread): wake the service so it
    does what is due now."""
    for service in list(_ACTIVE):
        service.wake_from_thread()


def schedule_wakeup(scheduler: BackgroundScheduler, job_id: str, when: dt.datetime) -> None:
    """Keep a wake-up at `when` in the in-memory job store (replaces one with the same id)."""
    scheduler.add_job(
        "mailer.service.scheduler:wake", "date", run_date=when, id=job_id, args=[job_id],
        replace_existing=True, jobstore="default",
    )


@dataclass
class RunReport:
    started: list[tuple[int, int]] = field(default_factory=list)
    missed: list[tuple[int, dt.datetime]] = field(default_factory=list)
    stats: EngineStats = field(default_factory=EngineStats)


class Service:
    """The scheduler side of `mailer run`; the engine and parts run beside it."""

    def __init__(self, app: App, *, report: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.report = report or (lambda line: log.info("%s", line))
        self.wake_up = asyncio.Event()
        self.result = RunReport()
        self.scheduler: BackgroundScheduler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._faults = FailureLog(log)

    def wake_from_thread(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
                loop.call_soon_threadsafe(self.wake_up.set)

    # -- the work of one poll --------------------------------------------------------------

    def start_due(self) -> None:
        """Start due campaigns, mark missed ones; then the due-work hooks (runs on a thread)."""
        now = utcnow()
        grace = dt.timedelta(minutes=self.app.settings.delivery.misfire_grace_minutes)
        with session_scope(self.app.sessions) as session:
            due = campaign_usecases.start_due(session, now, grace)
        for campaign_id, count in due.started:
            self.report(f"Campaign {campaign_id} started: {count} recipients.")
        for campaign_id, at in due.missed:
            local = at.astimezone(self.app.settings.tz).strftime("%Y-%m-%d %H:%M")
            self.report(
                f"Campaign {campaign_id} MISSED its time ({local}, more than "
                f"{self.app.settings.delivery.misfire_grace_minutes} minutes ago while the "
                f"service was down); not sent. Send it with `mailer campaigns send "
                f"{campaign_id}` or schedule it again."
            )
        self.result.started.extend(due.started)
        self.result.missed.extend(due.missed)
        for work in self.app.due_work():
            try:
                work(self.app, now)
            except Exception:  # one part's failure must not stop sending
                log.exception("due work %s failed", getattr(work, "__name__", work))

    def sync_jobs(self) -> None:
        """One job-store wake-up per scheduled campaign; none for campaigns no longer waiting."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        with session_scope(self.app.sessions) as session:
            wanted = {f"campaign:{cid}": at for cid, at in queries.scheduled_campaigns(session)}
        have = {job.id: job for job in scheduler.get_jobs(jobstore="default")
                if job.id.startswith("campaign:")}
        for job_id in have:
            if job_id not in wanted:
                with contextlib.suppress(JobLookupError):
                    scheduler.remove_job(job_id, jobstore="default")
        for job_id, at in wanted.items():
            job = have.get(job_id)
            if job is None or job.next_run_time is None or job.next_run_time != at:
                schedule_wakeup(scheduler, job_id, at)
                local = at.astimezone(self.app.settings.tz).strftime("%Y-%m-%d %H:%M")
                self.report(f"Campaign {job_id.removeprefix('campaign:')} waits for {local}.")

    # -- running ---------------------------------------------------------------------------

    def poll(self) -> None:
        """One poll, on a thread: the job store, then what is due."""
        self.sync_jobs()
        self.start_due()

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.app.settings
        grace = settings.delivery.misfire_grace_minutes * 60
        scheduler = BackgroundScheduler(
            # In memory only: the campaign rows are the truth, and a database job store would
            # unpickle whatever a row holds.
            jobstores={"default": MemoryJobStore()},
            job_defaults={"misfire_grace_time": max(grace, 1), "coalesce": True},
            timezone=dt.UTC,
            daemon=True,
        )
        self.scheduler = scheduler
        self._loop = asyncio.get_running_loop()
        _ACTIVE.append(self)
        db = DbThreads(1, name="scheduler-db")
        try:
            await db.run(scheduler.start)
            while not stop.is_set():
                await self._poll_once(db, stop)
        finally:
            _ACTIVE.remove(self)
            db.run_detached(lambda: scheduler.shutdown(wait=False))
            db.close()
            self.scheduler = None

    async def _poll_once(self, db: DbThreads, stop: asyncio.Event) -> None:
        poll_seconds = self.app.settings.delivery.poll_seconds
        poll = asyncio.ensure_future(db.run(self.poll))
        # Wait for the poll, but never past a stop: a stalled database must not hold SIGTERM.
        await asyncio.wait([poll, asyncio.ensure_future(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if not poll.done():
            poll.cancel()
            return
        exc = poll.exception()
        if exc is not None:  # e.g. the database is briefly away: try again next poll
            self._faults.failed("poll", f"scheduler poll failed: {one_line(exc)}; retrying "
                                f"every {poll_seconds} s")
        else:
            self._faults.ok("poll", "scheduler poll works again")
        self.wake_up.clear()
        waiters = [asyncio.ensure_future(stop.wait()),
                   asyncio.ensure_future(self.wake_up.wait())]
        await asyncio.wait(waiters, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()


async def run_once(
    app: App,
    *,
    report: Callable[[str], None] | None = None,
    progress: Callable[[EngineStats], None] | None = None,
    campaign_ids: list[int] | None = None,
    start: bool = True,
) -> RunReport:
    """Everything due now: start due campaigns, deliver until nothing is due, return."""
    service = Service(app, report=report)
    if start:
        await asyncio.to_thread(service.start_due)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    service.result.stats = await app.delivery_engine().run(
        stop, until_idle=True, campaign_ids=campaign_ids, progress=progress
    )
    return service.result


async def run_forever(
    app: App, stop: asyncio.Event, *, report: Callable[[str], None] | None = None
) -> RunReport:
    """`mailer run`: scheduler, delivery engine and the parts, until `stop` is set."""
    service = Service(app, report=report)
    engine = app.delivery_engine()
    tasks: list[asyncio.Future[Any]] = [
        asyncio.create_task(service.run(stop), name="scheduler"),
        asyncio.create_task(engine.run(stop), name="delivery"),
    ]
    for part in app.service_parts():
        tasks.append(asyncio.ensure_future(part(app, stop)))
    try:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            if task.exception() is not None:
                stop.set()
                raise task.exception()  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    service.result.stats = engine.stats
    return service.result


async def run_workers(app: App, stop: asyncio.Event, *, until_idle: bool = False) -> EngineStats:
    """`mailer worker`: only the delivery engine (extra workers on a shared PostgreSQL)."""
    return await app.delivery_engine().run(stop, until_idle=until_idle)


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM / SIGINT: stop claiming, finish the messages in hand, record them, exit."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

