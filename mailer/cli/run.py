"""`mailer run`, `mailer worker`, `mailer capture` and `mailer demo`: the service side."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import click

from mailer.app import App
from mailer.cli.context import CliContext, pass_cli
from mailer.delivery.engine import EngineStats

__all__ = ["commands", "deliver_with_progress"]


def _setup_logging(verbose: bool) -> None:
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

    \b
    Example:
      mailer run
      mailer run --once        # from cron or a systemd timer
    """
    _setup_logging(verbose)
    app = ctx.app()
    if once:
        deliver_with_progress(app)
        return

    from mailer.service.scheduler import install_signal_handlers, run_forever

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await run_forever(app, stop, report=click.echo)

    click.echo(f"GT Mailer service running (relay {app.settings.smtp.host}:"
               f"{app.settings.smtp.port}); Ctrl-C stops it.")
    asyncio.run(main())


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
    _setup_logging(verbose)
    app = ctx.app()
    from mailer.service.scheduler import install_signal_handlers, run_workers

    async def main() -> EngineStats:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        return await run_workers(app, stop, until_idle=until_idle)

    stats = asyncio.run(main())
    click.echo(f"Worker done: delivered {stats.sent}, deferred {stats.deferred}, "
               f"failed {stats.failed}.")


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
