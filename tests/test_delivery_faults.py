"""Delivery under faults, against real servers on SQLite and PostgreSQL: workers killed with
SIGKILL or stopped with SIGSTOP, a relay that drops idle connections, goes away and comes back,
a database that is locked under the service, two workers racing without a rate limit.

Each test waits on conditions (the relay's count, the database's state), never for a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from delivery_support import create_campaign, make_audience, relay_app, set_config, start, status
from fault_smtp import FaultServer, stop_outside_a_transaction, wait_until
from sqlalchemy import create_engine, func, select, text

from mailer.app import App, build_app
from mailer.campaigns.models import Delivery
from mailer.database.connect import session_scope
from mailer.delivery.engine import DeliveryEngine, EngineStats
from mailer.delivery.failure_log import FailureLog
from mailer.settings import Settings, load_settings

MAILER = [sys.executable, "-m", "mailer"]


@pytest.fixture
def relay() -> Iterator[FaultServer]:
    server = FaultServer().start()
    yield server
    with contextlib.suppress(Exception):  # a test may have left it down
        server.stop()


class Running:
    """A long-running engine (like `mailer run`'s) on its own thread and event loop."""

    def __init__(self, app: App, **kwargs: Any) -> None:
        self.engine = DeliveryEngine(app, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.ready = threading.Event()
        self.stats: EngineStats | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.ready.set()
        self.stats = await self.engine.run(self.stop, idle_seconds=0.05)

    def __enter__(self) -> Running:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.loop is not None and self.stop is not None
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(60)
        assert not self.thread.is_alive(), "the engine did not stop"


def _counts(app: App) -> dict[str, int]:
    with session_scope(app.sessions) as session:
        rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
        return {st: int(n) for st, n in rows}


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*MAILER, "worker", "-v", *args], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate(timeout=30)
    return out or ""


# -- 11: two workers without a rate limit ---------------------------------------------------

def test_two_unthrottled_workers_send_each_message_once(settings: Settings, relay, tmp_path):
    """No rate limit hides a claim that is not exclusive (FOR UPDATE SKIP LOCKED on
    PostgreSQL): small batches claimed side by side by two workers, every one checked."""
    app = relay_app(settings, relay.port, batch_size=10, concurrency=4)
    try:
        emails = make_audience(app.sessions, 400)
        start(app, create_campaign(app, tmp_path))

        async def both() -> list[EngineStats]:
            engines = [DeliveryEngine(app, worker_id=f"w{n}") for n in range(2)]
            return list(await asyncio.gather(*(
                e.run(asyncio.Event(), until_idle=True, idle_seconds=0.02) for e in engines)))

        stats = asyncio.run(both())
        assert relay.duplicates() == {}
        assert relay.rcpts() == {e: 1 for e in emails}
        assert all(s.sent > 0 for s in stats), "one worker did all the work: no race tested"
        assert _counts(app) == {"sent": 400}
    finally:
        app.close()


# -- 1 and 2: a killed worker does not hold the budget, nor its rows for a lease ------------

@pytest.fixture
def proc_app(env, config_file: Path, relay: FaultServer) -> Iterator[App]:
    """The app as worker subprocesses see it (settings in the config file)."""
    set_config(config_file, smtp__port=relay.port, smtp__timeout_seconds=5.0,
               delivery__poll_seconds=0.2)
    app = build_app(load_settings())
    yield app
    app.close()


def test_a_killed_worker_leaves_no_stuck_budget(proc_app, config_file, relay, tmp_path,
                                               caplog):
    """The Exchange Online set-up (30 a minute) with the default lease of ten minutes: a
    worker killed with everything claimed must not keep the budget, nor its rows."""
    set_config(config_file, smtp__rate_per_minute=30, delivery__lease_seconds=600)
    emails = make_audience(proc_app.sessions, 30)
    start(proc_app, create_campaign(proc_app, tmp_path))
    relay.stall()  # the worker claims the whole budget and gets nothing through
    proc = _worker()
    try:
        wait_until(lambda: _counts(proc_app).get("sending", 0) == 30, what="30 claimed")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        _kill(proc)
    relay.unstall()
    app = build_app(load_settings())
    try:
        with caplog.at_level(logging.WARNING, logger="mailer.delivery"):
            stats = asyncio.run(DeliveryEngine(app).run(asyncio.Event(), until_idle=True,
                                                        idle_seconds=0.05))
    finally:
        app.close()
    assert stats.sent == 30
    assert relay.rcpts() == {e: 1 for e in emails}
    assert any("is dead" in r.getMessage() and "30 deliveries" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_a_full_budget_says_why_nothing_is_sent(settings, relay, tmp_path, caplog):
    app = relay_app(settings, relay.port, rate_per_minute=5)
    try:
        make_audience(app.sessions, 8)
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        with caplog.at_level(logging.INFO, logger="mailer.delivery"), Running(app):
            wait_until(lambda: _counts(app).get("sent", 0) == 5, what="5 sent")
            wait_until(lambda: any("relay limit of 5 per minute" in r.getMessage()
                                   for r in caplog.records), what="the budget log line")
        lines = [r for r in caplog.records if "relay limit" in r.getMessage()]
        assert len(lines) == 1  # once, not per claim
    finally:
        app.close()


# -- 3: a stalled worker neither sends nor records what was taken over ----------------------

def test_a_stopped_worker_sends_nothing_it_no_longer_holds(proc_app, config_file, relay,
                                                          tmp_path, db_url):
    set_config(config_file, delivery__lease_seconds=2, delivery__batch_size=40,
               delivery__concurrency=1, smtp__timeout_seconds=1.0)
    relay.delay = 0.02
    emails = make_audience(proc_app.sessions, 40)
    campaign_id = create_campaign(proc_app, tmp_path)
    start(proc_app, campaign_id)
    proc = _worker("--until-idle")
    try:
        relay.wait_for(lambda got: len(got) >= 3, timeout=30)
        stop_outside_a_transaction(proc, db_url)  # a long GC, a frozen VM: alive, silent
        stopped_at = relay.count()
        # In flight at the stop: what reached the relay (or was on the wire) unrecorded.
        with relay.lock:
            before_stop = {r.rcpt.lower() for r in relay.received}
        app = build_app(load_settings())
        try:
            # Its pid is alive and its lock held: the takeover waits for the lease (2 s).
            stats = asyncio.run(DeliveryEngine(app).run(asyncio.Event(), until_idle=True,
                                                        idle_seconds=0.05))
        finally:
            app.close()
        assert stats.sent >= 40 - stopped_at - 1
        proc.send_signal(signal.SIGCONT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        _kill(proc)
    # Sent twice at most: what was in flight at the stop (received, or the one on the wire,
    # but not recorded); nothing it held after the takeover.
    dups = relay.duplicates()
    assert all(n == 1 for n in dups.values()), (dups, out)
    assert len(set(dups) - before_stop) <= 1, (dups, before_stop, out)
    assert set(relay.rcpts()) == set(emails)
    assert _counts(proc_app) == {"sent": 40}
    assert status(proc_app, campaign_id)["status"] == "finished"


# -- 5: idle pooled connections dropped by the relay ----------------------------------------

def test_idle_connections_dropped_by_the_relay_are_reconnected(settings, tmp_path):
    relay = FaultServer(idle_timeout=0.3).start()
    app = relay_app(settings, relay.port, max_connection_failures=2, concurrency=4)
    try:
        first = make_audience(app.sessions, 12)
        start(app, create_campaign(app, tmp_path))
        with Running(app) as running:
            relay.wait_for(lambda got: len(got) >= 12)
            wait_until(lambda: relay.dropped >= 1, what="idle connections dropped")
            second = make_audience(app.sessions, 20, start=100)
            second_id = create_campaign(app, tmp_path)
            start(app, second_id)
            # The second campaign goes to the whole list: the first twelve again, and twenty.
            relay.wait_for(lambda got: len(got) >= 12 + 32)
            wait_until(lambda: status(app, second_id)["status"] == "finished", what="finished")
        assert running.stats is not None and running.stats.paused == []
        assert relay.rcpts() == {**{e: 2 for e in first}, **{e: 1 for e in second}}
    finally:
        app.close()
        relay.stop()


# -- 6 and 8: a relay outage pauses, then resumes by itself; logged once ---------------------

def test_a_relay_outage_pauses_and_resumes_by_itself(settings, relay, tmp_path, caplog,
                                                     run_cli):
    app = relay_app(settings, relay.port, max_connection_failures=3, outage_retry_seconds=0.2,
                    outage_retry_max_seconds=0.5, timeout_seconds=2)
    try:
        emails = make_audience(app.sessions, 25)
        campaign_id = create_campaign(app, tmp_path)
        relay.down()
        start(app, campaign_id)
        with caplog.at_level(logging.INFO, logger="mailer.delivery"), Running(app):
            wait_until(lambda: _outage_pauses(app, campaign_id) >= 2, what="two outage pauses")
            shown = run_cli("campaigns", "status", str(campaign_id)).output
            relay.up()
            relay.wait_for(lambda got: len(got) >= 25)
            wait_until(lambda: status(app, campaign_id)["status"] == "finished",
                       what="finished")
        assert "relay unreachable since" in shown
        assert relay.rcpts() == {e: 1 for e in emails}
        messages = [r.getMessage() for r in caplog.records]
        failures = [m for m in messages if "cannot reach the relay" in m]
        assert len(failures) <= 2, failures  # the first, and at most one summary
        assert any("takes mail again" in m for m in messages), messages
        with session_scope(app.sessions) as session:
            from mailer.campaigns import queries

            campaign = queries.campaign_by_id(session, campaign_id)
            assert campaign is not None and campaign.outage_since is None
    finally:
        app.close()


def _outage_pauses(app: App, campaign_id: int) -> int:
    with session_scope(app.sessions) as session:
        from mailer.campaigns import queries

        campaign = queries.campaign_by_id(session, campaign_id)
        assert campaign is not None
        return campaign.relay_outages


def test_an_administrators_pause_is_not_lifted_by_itself(settings, relay, tmp_path, run_cli):
    app = relay_app(settings, relay.port, outage_retry_seconds=0.05)
    try:
        make_audience(app.sessions, 3)
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        run_cli("campaigns", "pause", str(campaign_id))
        stats = asyncio.run(DeliveryEngine(app).run(asyncio.Event(), until_idle=True,
                                                    idle_seconds=0.05))
        assert stats.sent == 0 and status(app, campaign_id)["status"] == "paused"
    finally:
        app.close()


# -- 10: pause stops claiming, hands back, says what was on the wire ------------------------

def test_pause_hands_back_what_is_queued_and_reports_the_wire(settings, relay, tmp_path,
                                                              run_cli):
    relay.delay = 0.02
    app = relay_app(settings, relay.port, concurrency=2, batch_size=100)
    try:
        make_audience(app.sessions, 100)
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        with Running(app):
            relay.wait_for(lambda got: len(got) >= 5)
            out = run_cli("campaigns", "pause", str(campaign_id)).output
            at_return = relay.count()
            counts = _counts(app)
        found = re.search(r"(\d+) message\(s\) were already on the wire", out)
        assert found, out
        assert relay.count() == at_return  # nothing went out after pause returned
        assert counts.get("sending", 0) == 0
        assert counts["sent"] == at_return  # all that reached the relay is recorded
        assert counts["queued"] == 100 - counts["sent"] > 0
        assert status(app, campaign_id)["status"] == "paused"
    finally:
        app.close()


# -- 9: exit codes for cron -------------------------------------------------------------------

def test_run_once_exit_codes(settings, env, config_file, relay, tmp_path, run_cli):
    # The relay is away (nothing listens on its port).
    set_config(config_file, smtp__port=relay.port, smtp__timeout_seconds=2.0)
    relay.down()
    app = build_app(load_settings())
    try:
        make_audience(app.sessions, 3)
        campaign_id = create_campaign(app, tmp_path)
        start(app, campaign_id)
        result = run_cli("run", "--once", ok=False)
        assert result.exit_code == 3, result.output
        assert f"Campaign {campaign_id} is paused" in result.output
        # The relay is back but answers 451: the campaign waits for its retry.
        set_config(config_file, delivery__retry_base_seconds=3600)
        relay.up()
        relay.refuse_all = (451, "4.3.2 try again later")
        run_cli("campaigns", "resume", str(campaign_id))
        result = run_cli("campaigns", "send", str(campaign_id), "--wait", ok=False)
        assert result.exit_code != 0
        result = run_cli("run", "--once", ok=False)
        assert result.exit_code == 4, result.output
        relay.refuse_all = None
    finally:
        app.close()


# -- 7: a frozen database holds neither sending nor SIGTERM ---------------------------------

def test_sigterm_with_the_database_locked_stops_in_bounded_time(proc_app, config_file, relay,
                                                                 tmp_path, db_url):
    set_config(config_file, delivery__shutdown_seconds=2, smtp__timeout_seconds=2.0)
    relay.delay = 0.01
    make_audience(proc_app.sessions, 150)
    campaign_id = create_campaign(proc_app, tmp_path)
    start(proc_app, campaign_id)
    proc = subprocess.Popen([*MAILER, "run", "-v"], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    locker: Any = None
    try:
        relay.wait_for(lambda got: len(got) >= 10, timeout=60)
        locker = _lock_database(db_url)
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        out, _ = proc.communicate(timeout=40)
        took = time.monotonic() - began
    finally:
        if locker is not None:
            locker.close()
        _kill(proc)
    assert took < 20, f"stopping took {took:.0f}s"
    unrecorded = re.search(r"stopping with (\d+) outcomes not recorded \((\d+) of them sent",
                           out)
    resent_allowed = int(unrecorded.group(2)) if unrecorded else 0
    assert proc.returncode in (0, 5), out
    if unrecorded:
        assert proc.returncode == 5
    # The next run (database back) finishes it: nothing lost, duplicates only of what the
    # stopped run said it could not record.
    result = subprocess.run([*MAILER, "run", "--once"], env=os.environ.copy(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(relay.rcpts()) == 150
    assert sum(relay.duplicates().values()) <= resent_allowed, out


class _Locker:
    def __init__(self, close: Any) -> None:
        self.close = close


def _lock_database(db_url: str) -> _Locker:
    """Hold the tables locked from another session, as a stalled database would."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        return _Locker(conn.close)
    engine = create_engine(db_url)
    conn = engine.connect()
    conn.execute(text("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE"))

    def close() -> None:
        conn.rollback()
        conn.close()
        engine.dispose()

    return _Locker(close)


# -- 8: the failure log itself ---------------------------------------------------------------

def test_failure_log_says_each_kind_once_and_counts_repeats(caplog):
    now = [0.0]
    faults = FailureLog(logging.getLogger("mailer.test"), every=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="mailer.test"):
        for _ in range(443):
            faults.failed("database", "the database is away")
            now[0] += 0.1
        faults.failed("relay", "cannot reach the relay")
        faults.ok("database", "the database answers again")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "the database is away"
    assert sum("the database is away" in m for m in messages) == 1  # 44 s: no summary yet
    assert messages[-1].startswith("the database answers again (after 443 failures")
    assert "cannot reach the relay" in messages
    assert all(r.exc_info is None for r in caplog.records)


@pytest.fixture(autouse=True)
def _one_person_may_schedule(config_file: Path) -> None:
    """These tests are about times and faults, not the four-eyes rule (tested on its own)."""
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace("require_approval = true", "require_approval = false"),
                           encoding="utf-8")
