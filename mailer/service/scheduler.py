"""The long-running service behind `mailer run`: scheduler, delivery engine and other parts.

Scheduled sends: the campaign row (status `scheduled`, scheduled_at) is the truth. APScheduler 3
keeps one date job per scheduled campaign in its SQLAlchemy job store (table apscheduler_jobs,
same database), so a restarted service knows its wake-up times; a job only wakes the service,
which then starts due campaigns with a conditional UPDATE (never twice). On every poll
(delivery.poll_seconds) and every wake-up the service:

1. syncs the job store with the scheduled campaigns (a campaign scheduled by `mailer campaigns
   schedule` in another process gets its job within one poll);
2. starts every scheduled campaign whose time has come, if at most delivery.misfire_grace_minutes
   late, else marks it `missed` and reports it (a send whose time passed while the service was
   down is never silently dropped, never sent twice);
3. does the due work the composition root lists (App.due_work: meeting reminders, owed mail).

The delivery engine runs beside it all the time and sends whatever is running.
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
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from mailer.campaigns import queries
from mailer.database.connect import session_scope
from mailer.delivery.engine import EngineStats
from mailer.kernel.clock import utcnow
from mailer.usecases import campaigns as campaign_usecases

if TYPE_CHECKING:
    from mailer.app import App

__all__ = [
    "JOB_TABLE",
    "Service",
    "RunReport",
    "run_once",
    "run_forever",
    "run_workers",
    "schedule_wakeup",
    "install_signal_handlers",
]

log = logging.getLogger("mailer.service.scheduler")

#: APScheduler's job table, in our database beside our own tables.
JOB_TABLE = "apscheduler_jobs"

# The running service of this process, for job-store wake-ups (APScheduler stores a function by
# its import path, so the job cannot carry the service object itself).
_ACTIVE: list[Service] = []


async def wake(reason: str = "") -> None:
    """The function every stored job runs: wake the service so it does what is due now."""
    for service in _ACTIVE:
        service.wake_up.set()


def schedule_wakeup(scheduler: AsyncIOScheduler, job_id: str, when: dt.datetime) -> None:
    """Keep a wake-up at `when` in the persistent job store (replaces one with the same id)."""
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
        self.scheduler: AsyncIOScheduler | None = None

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

    # -- running ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        settings = self.app.settings
        grace = settings.delivery.misfire_grace_minutes * 60
        scheduler = AsyncIOScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(engine=self.app.engine, tablename=JOB_TABLE),
                "memory": MemoryJobStore(),
            },
            job_defaults={"misfire_grace_time": max(grace, 1), "coalesce": True},
            timezone=dt.UTC,
        )
        self.scheduler = scheduler
        _ACTIVE.append(self)
        scheduler.start()
        try:
            while not stop.is_set():
                try:
                    self.sync_jobs()
                    await asyncio.to_thread(self.start_due)
                except Exception:  # e.g. the database is briefly away: try again next poll
                    log.exception("scheduler poll failed; retrying in %s s",
                                  settings.delivery.poll_seconds)
                self.wake_up.clear()
                waiters = [asyncio.ensure_future(stop.wait()),
                           asyncio.ensure_future(self.wake_up.wait())]
                await asyncio.wait(waiters, timeout=settings.delivery.poll_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        finally:
            _ACTIVE.remove(self)
            scheduler.shutdown(wait=False)
            self.scheduler = None


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

