"""`mailer run` and `mailer worker` as real processes: kill -9 mid-campaign, restarts with a
pending schedule, missed schedules, and two workers on PostgreSQL — each on a real SMTP server."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_support import create_campaign, make_audience, set_config, start, status
from smtp_support import SmtpServer
from sqlalchemy import inspect, select, update

from mailer.app import App, build_app
from mailer.campaigns import service as campaigns
from mailer.campaigns.models import Campaign, Delivery
from mailer.database.connect import session_scope
from mailer.settings import load_settings

MAILER = [sys.executable, "-m", "mailer"]


@pytest.fixture
def relay() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def svc_app(env, config_file: Path, relay: SmtpServer) -> Iterator[App]:
    """The app as the subprocesses see it: relay port, short lease and poll, set in the file."""
    set_config(config_file, smtp__port=relay.port, delivery__lease_seconds=2,
               delivery__poll_seconds=0.2, delivery__batch_size=10,
               smtp__timeout_seconds=5.0)
    app = build_app(load_settings())
    yield app
    app.close()


def _wait(predicate, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> bool:
    """Read the process's output line by line until a line holds `needle` (or it ends)."""
    import threading

    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if needle in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    return found.wait(timeout)


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILER, *args], capture_output=True, text=True, timeout=timeout,
                          env=os.environ.copy())


def test_kill_9_mid_campaign_resends_at_most_what_was_in_flight(
    svc_app, config_file, relay, tmp_path
):
    set_config(config_file, smtp__rate_per_second=25)
    emails = make_audience(svc_app.sessions, 60)
    campaign_id = create_campaign(svc_app, tmp_path)
    start(svc_app, campaign_id)

    proc = subprocess.Popen([*MAILER, "run", "--once"], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    def recorded() -> int:
        with session_scope(svc_app.sessions) as session:
            return len(session.scalars(select(Delivery.id).where(Delivery.status == "sent")).all())

    try:
        # Mid-campaign: some messages received by the relay and recorded as sent, not all.
        relay.wait_for(lambda got: len(got) >= 10, timeout=60)
        _wait(lambda: recorded() >= 5, timeout=60, what="recorded sends")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with session_scope(svc_app.sessions) as session:
        rows = session.execute(select(Delivery.email, Delivery.status)).all()
    in_flight = {email for email, st in rows if st == "sending"}
    recorded_sent = {email for email, st in rows if st == "sent"}
    assert recorded_sent, "the kill came before anything was recorded"
    assert len(recorded_sent) < 60, "the kill came after the campaign had finished"

    result = _run("run", "--once")
    assert result.returncode == 0, result.stdout + result.stderr

    got = relay.rcpts()
    assert set(got) == set(emails)  # everyone got at least one
    duplicates = {rcpt for rcpt, n in got.items() if n > 1}
    assert duplicates <= in_flight  # only messages in flight at the kill were sent again
    assert all(got[e] == 1 for e in recorded_sent)  # recorded as sent: never mailed again
    assert status(svc_app, campaign_id)["status"] == "finished"


def test_restart_with_a_pending_schedule(svc_app, relay, tmp_path):
    emails = make_audience(svc_app.sessions, 5)
    campaign_id = create_campaign(svc_app, tmp_path)
    # Far enough ahead that a slow start of the first service cannot reach it.
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    with session_scope(svc_app.sessions) as session:
        campaigns.schedule(session, campaign_id, at)

    first = subprocess.Popen([*MAILER, "run"], env=os.environ.copy(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The wake-up is rebuilt from the campaign row when the service starts.
        seen = _read_until(first, f"Campaign {campaign_id} waits for")
    finally:
        first.send_signal(signal.SIGTERM)
        first_out, _ = first.communicate(timeout=20)
    assert seen, first_out
    assert relay.received == [], first_out
    with svc_app.engine.connect() as conn:  # nothing of the schedule is kept as pickles
        assert "apscheduler_jobs" not in inspect(conn).get_table_names()
    assert status(svc_app, campaign_id)["status"] == "scheduled"
    # While the service is down, the editor moves the send to a moment from now.
    with session_scope(svc_app.sessions) as session:
        campaigns.schedule(session, campaign_id,
                           dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2))

    second = subprocess.Popen([*MAILER, "run"], env=os.environ.copy(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        relay.wait_for(lambda got: len(got) >= 5, timeout=40)
        _wait(lambda: status(svc_app, campaign_id)["status"] == "finished", what="finished")
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=20)
    assert relay.rcpts() == {e: 1 for e in emails}
    assert min(r.at for r in relay.received) > 0
    assert b"started" in out


def test_missed_schedule_is_reported_not_sent(svc_app, relay, tmp_path, run_cli):
    make_audience(svc_app.sessions, 3)
    missed = create_campaign(svc_app, tmp_path)
    late_but_ok = create_campaign(svc_app, tmp_path)
    now = dt.datetime.now(dt.UTC)
    with session_scope(svc_app.sessions) as session:
        for cid in (missed, late_but_ok):
            campaigns.schedule(session, cid, now + dt.timedelta(minutes=5))
        # The service was down while their time passed: 2 hours and 10 minutes ago.
        session.execute(update(Campaign).where(Campaign.id == missed)
                        .values(scheduled_at=now - dt.timedelta(hours=2)))
        session.execute(update(Campaign).where(Campaign.id == late_but_ok)
                        .values(scheduled_at=now - dt.timedelta(minutes=10)))
    result = run_cli("run", "--once")
    assert f"Campaign {missed} MISSED" in result.output
    assert status(svc_app, missed)["status"] == "missed"
    assert "grace" in status(svc_app, missed)["pause_reason"]
    assert status(svc_app, late_but_ok)["status"] == "finished"
    assert len(relay.received) == 3  # only the one within the grace period
    # A missed campaign can still be sent on purpose (approved first: four-eyes).
    run_cli("campaigns", "approve", str(missed))
    run_cli("campaigns", "send", str(missed), "--wait")
    assert len(relay.received) == 6


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_never_send_twice(
    svc_app, config_file, relay, tmp_path, db_url
):
    # A relay limit keeps the campaign going long enough for both workers to start.
    set_config(config_file, smtp__rate_per_second=60)
    emails = make_audience(svc_app.sessions, 150)
    campaign_id = create_campaign(svc_app, tmp_path)
    start(svc_app, campaign_id)
    workers = [subprocess.Popen([*MAILER, "worker", "--until-idle"], env=os.environ.copy(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert relay.rcpts() == {e: 1 for e in emails}
    delivered = [int(out.split("delivered ")[1].split(",")[0]) for out in outputs]
    assert sum(delivered) == 150
    assert all(n > 0 for n in delivered), delivered  # both took part
    # The relay limit held across both workers: no second on the relay's clock saw more.
    times = sorted(r.at for r in relay.received)
    for i, t in enumerate(times):
        assert len([u for u in times[i:] if u < t + 1.0]) <= 60
    assert status(svc_app, campaign_id)["status"] == "finished"
