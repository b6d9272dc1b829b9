"""`mailer run`, `mailer worker`, `mailer capture` and `mailer demo`: the service side."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from mailer.app import App
from mailer.cli.context import CliContext, pass_cli
from mailer.delivery.engine import EngineStats

__all__ = ["commands", "deliver_with_progress", "exit_status", "EXIT_PAUSED",
           "EXIT_NOT_FINISHED", "EXIT_UNRECORDED", "exit_after", "warn_if_generated_key"]

#: Exit codes of `run --once` and `campaigns send --wait`, for cron and systemd timers (README).
EXIT_PAUSED = 3  # a campaign is paused (relay unreachable, broken template): needs a look
EXIT_NOT_FINISHED = 4  # still running: deferred messages wait for a retry; run again later
EXIT_UNRECORDED = 5  # stopped before every outcome was recorded (database away, or a signal)

log = logging.getLogger("mailer.cli")


def warn_if_generated_key(app: App) -> None:
    """Say loudly when a service runs on the key generated for the demo.

    That key lives in the data folder: whoever can read the folder can forge unsubscribe and
    RSVP links, and a second machine (a `mailer worker`) would sign with a different key.
    """
    from mailer.settings import uses_generated_key

    if not uses_generated_key(app.settings):
        return
    message = (
        f"WARNING: running on a generated secret key ({app.settings.data_dir / 'secret.key'}); "
        "set MAILER_SECRET_KEY (at least 32 characters, the same for every process) for "
        "production."
    )
    click.secho(message, fg="red", bold=True, err=True)
    log.warning("%s", message)


def setup_logging(verbose: bool) -> None:
    """The log of every long-running command (`run`, `worker`, `web`, `console`): warnings,
    or with -v also what happens (the web access log among it); one format for all."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def deliver_with_progress(
    app: App, *, campaign_ids: list[int] | None = None, start: bool = True
) -> EngineStats:
    """Run everything due until delivered or deferred; a progress bar on a terminal."""
    from mailer.campaigns import queries
    from mailer.database.connect import session_scope
    from mailer.service.scheduler import run_once
    from subscribers.models import utcnow

    def report(line: str) -> None:
        click.echo(line)

    if not sys.stdout.isatty():
        result = asyncio.run(run_once(app, report=report, campaign_ids=campaign_ids, start=start))
        stats = result.stats
        click.echo(f"Delivered {stats.sent}, deferred {stats.deferred}, failed {stats.failed}, "
                   f"skipped {stats.skipped}.")
        return stats

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("[bold]Sending"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), TimeRemainingColumn()) as bar:
        task = bar.add_task("send", total=None, detail="")
        totals = {"left": 0}

        def progress(stats: EngineStats) -> None:
            done = stats.sent + stats.failed + stats.deferred + stats.skipped
            if not totals["left"]:
                with session_scope(app.sessions) as session:
                    due, _later = queries.work_left(session, utcnow(), campaign_ids)
                totals["left"] = due + done
            bar.update(task, completed=done, total=max(totals["left"], done),
                       detail=f"deferred {stats.deferred} failed {stats.failed}")

        result = asyncio.run(run_once(app, report=bar.console.print, progress=progress,
                                      campaign_ids=campaign_ids, start=start))
    stats = result.stats
    click.echo(f"Delivered {stats.sent}, deferred {stats.deferred}, failed {stats.failed}, "
               f"skipped {stats.skipped}.")
    return stats


def _run_bounded(main: Callable[[], Awaitable[EngineStats]]) -> EngineStats:
    """Run the service's coroutine like asyncio.run, but without waiting at the end for
    threads still stuck in a stalled database (asyncio.run joins them, without a time limit):
    the service itself stops within its bounds and says what it left."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()  # gives up on the default executor's threads instead of joining them
        _leave_stuck_threads()


def _leave_stuck_threads(grace: float = 5.0) -> None:
    """Idle pool threads (name look-ups, finished calls) end at once; give every thread a few
    seconds, then leave those still inside a call."""
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(deadline - time.monotonic(), 0.0))
    stuck = [t for t in threading.enumerate()
             if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if stuck:
        # Interpreter exit would join them (database calls that may never return).
        click.echo(f"Leaving {len(stuck)} database call(s) that did not return.", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(EXIT_UNRECORDED)


def exit_status(
    app: App, stats: EngineStats, campaign_ids: list[int] | None = None
) -> tuple[int, list[str]]:
    """The exit code after delivering, and a line for each campaign that caused it.

    Looks at the given campaigns, or else at those running now and those this run (or a
    relay outage) paused; a pause by an administrator is not a failure of this run.
    """
    from mailer.campaigns import queries
    from mailer.database.connect import session_scope

    with session_scope(app.sessions) as session:
        if campaign_ids is not None:
            found = [c for c in (queries.campaign_by_id(session, i) for i in campaign_ids) if c]
        else:
            found = [c for c in queries.campaigns_list(session, ("running", "paused"))
                     if c.status == "running" or c.id in stats.paused or c.resume_at]
        states = [(c.id, c.status, c.pause_reason) for c in found]
    lines: list[str] = []
    code = 0
    if stats.unrecorded:
        code = EXIT_UNRECORDED
        lines.append(f"{stats.unrecorded} outcomes could not be recorded before stopping.")
    for campaign_id, state, reason in states:
        if state == "paused":
            code = code or EXIT_PAUSED
            lines.append(f"Campaign {campaign_id} is paused: {reason or 'by an administrator'}")
        elif state not in ("finished", "cancelled"):
            code = code or EXIT_NOT_FINISHED
            lines.append(f"Campaign {campaign_id} is not finished ({state}); the next run "
                         "continues it.")
    return code, lines


def exit_after(app: App, stats: EngineStats, campaign_ids: list[int] | None = None) -> None:
    code, lines = exit_status(app, stats, campaign_ids)
    for line in lines:
        click.echo(line, err=True)
    if code:
        raise SystemExit(code)


@click.command("run")
@click.option("--once", is_flag=True,
              help="Do what is due now, wait until it is delivered or deferred, then exit.")
@click.option("-v", "--verbose", is_flag=True, help="Log what the service does.")
@pass_cli
def run(ctx: CliContext, once: bool, verbose: bool) -> None:
    """The service: scheduler, delivery engine, and the other parts (bounces, web pages).

    Scheduled campaigns are sent at their time; one whose time passed while the service was down
    is started if within delivery.misfire_grace_minutes, else marked `missed` and reported.
    Stop it with Ctrl-C or SIGTERM: messages in hand are finished and recorded.

    With --once the exit code says how it went: 0 all finished, 3 a campaign is paused, 4 a
    campaign is not finished yet (deferred retries), 5 outcomes could not be recorded.

    \b
    Example:
      mailer run
      mailer run --once        # from cron or a systemd timer
    """
    setup_logging(verbose)
    app = ctx.app()
    warn_if_generated_key(app)
    if once:
        stats = deliver_with_progress(app)
        exit_after(app, stats)
        return

    from mailer.service.scheduler import install_signal_handlers, run_forever

    async def main() -> EngineStats:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        return (await run_forever(app, stop, report=click.echo)).stats

    click.echo(f"GT Mailer service running (relay {app.settings.smtp.host}:"
               f"{app.settings.smtp.port}); Ctrl-C stops it.")
    stats = _run_bounded(main)
    click.echo(f"Stopped: delivered {stats.sent}, handed back {stats.requeued}.")
    if stats.unrecorded:
        click.echo(f"{stats.unrecorded} outcomes could not be recorded before stopping; those "
                   "deliveries are sent again once this worker is seen gone.", err=True)
        raise SystemExit(EXIT_UNRECORDED)


@click.command("worker")
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due.")
@click.option("-v", "--verbose", is_flag=True, help="Log what the worker does.")
@pass_cli
def worker(ctx: CliContext, until_idle: bool, verbose: bool) -> None:
    """An extra delivery worker (no scheduler) against the same PostgreSQL database.

    Start as many as the relay and the machines allow; they claim disjoint batches.

    \b
    Example:
      MAILER_DATABASE_URL=postgresql+psycopg://mailer@db/mailer mailer worker
    """
    setup_logging(verbose)
    app = ctx.app()
    from mailer.service.scheduler import install_signal_handlers, run_workers

    async def main() -> EngineStats:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        return await run_workers(app, stop, until_idle=until_idle)

    stats = _run_bounded(main)
    click.echo(f"Worker done: delivered {stats.sent}, deferred {stats.deferred}, "
               f"failed {stats.failed}.")
    if stats.unrecorded:
        click.echo(f"{stats.unrecorded} outcomes could not be recorded before stopping.",
                   err=True)
        raise SystemExit(EXIT_UNRECORDED)


@click.command("capture")
@click.option("--port", default=None, type=int, help="Port (default: smtp.port of the config).")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where .eml files go (default: <data_dir>/outbox).")
@pass_cli
def capture(ctx: CliContext, port: int | None, folder: Path | None) -> None:
    """A local SMTP server on loopback that keeps every message as an .eml file.

    Point smtp.host/smtp.port at it to try GT Mailer without a real relay.

    \b
    Example:
      mailer capture --port 2525 --folder var/outbox
    """
    from mailer.delivery.capture import CaptureServer

    settings = ctx.settings
    target = folder or settings.data_dir / "outbox"
    server = CaptureServer(target, port=port or settings.smtp.port).start()
    click.echo(f"Capturing mail on 127.0.0.1:{server.port} into {target} (Ctrl-C stops).")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        click.echo(f"Captured {server.count} messages.")


@click.command("demo")
@click.option("--delay", default=5, show_default=True, type=int,
              help="Seconds from now the sample newsletter is scheduled for.")
@pass_cli
def demo(ctx: CliContext, delay: int) -> None:
    """Set everything up on the embedded defaults and deliver a scheduled sample newsletter.

    SQLite database in the data folder, sample lists and subscribers (Dutch municipalities),
    the sample newsletter, a local capture SMTP server on loopback, a send scheduled a few
    seconds ahead and delivered by the scheduler. Running it again is safe.

    \b
    Example:
      mailer demo
    """
    from mailer.cli.demo import run_demo

    run_demo(ctx.settings, delay_seconds=delay, echo=click.echo)


commands: list[click.Command] = [run, worker, capture, demo]
