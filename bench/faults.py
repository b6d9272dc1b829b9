"""Delivery under faults: lost messages, duplicates beyond what was in flight, peak rate.

Run by hand (not part of the test suite):

    .venv/bin/python bench/faults.py [--backend sqlite|postgresql|both] [--count 400]
        [--rate 100] [--scale 0.01] [--postgres URL]

Real `mailer worker` processes send a campaign to the tests' fault-injecting relay
(tests/fault_smtp.py, aiosmtpd on loopback), under smtp.rate_per_second = --rate, while this
script does to them what goes wrong in production:

- kill -9 at five moments: right after the first claim (relay stalled, nothing sent), early
  (10 % received), mid-campaign (50 %), just after outcomes were recorded (50 % recorded), and
  at the last message (everything received, not all recorded);
- a stalled worker: SIGSTOP past its lease while a second worker takes over, then SIGCONT;
- a relay outage of 10 minutes, and a database outage of 60 seconds, both on a compressed
  clock: every duration (the outage, the lease, the outage retry waits of 30 s doubling up to
  10 min) is multiplied by --scale, so the default 0.01 turns ten minutes into six seconds
  with the same proportions. On PostgreSQL the workers reach the database through a TCP proxy
  on loopback that the bench cuts (open connections reset, new ones refused, as when the
  server goes away) and restores on the same port; the PostgreSQL server itself, which other
  work may share, is never stopped. On SQLite another process holds the file locked.

After each fault the campaign is finished by a fresh worker. Reported per scenario: messages
lost (recipients the relay never got; must be 0), duplicates beyond in flight (recipients
received twice who were not `sending` when the fault struck; must be 0), and the peak number of
messages the relay accepted within one second, against the limit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fault_smtp import FaultServer, stop_outside_a_transaction, wait_until  # noqa: E402

from mailer.app import build_app  # noqa: E402
from mailer.campaigns import service as campaigns  # noqa: E402
from mailer.campaigns.models import Delivery  # noqa: E402
from mailer.database.connect import make_engine, session_scope, upgrade_schema  # noqa: E402
from mailer.settings import load_settings  # noqa: E402
from subscribers import service as subscribers  # noqa: E402
from subscribers.service import SubscriberData  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdefghij"
MAILER = [sys.executable, "-m", "mailer"]


class TcpProxy:
    """A loopback TCP proxy in front of the database, for an outage of the database alone.

    `cut()`: the open connections are reset and new ones refused, as when the server goes
    away; `restore()`: it listens on the same port again. The bench's own look-ups go to the
    database directly, so it keeps counting while the workers are cut off.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.port = 0
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)  # the accept loop looks up now and then to see if it is cut
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            listener.close()
        with self.lock:
            conns, self.conns = self.conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                # Linger 0: a reset, not a polite close; shutdown wakes the pumps blocked in recv.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener:
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                self.conns |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (src, dst):
                with self.lock:
                    self.conns.discard(conn)
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()


class Bench:
    def __init__(self, backend: str, args: argparse.Namespace, folder: Path) -> None:
        self.backend = backend
        self.args = args
        self.folder = folder
        self.relay = FaultServer().start()
        self.url = self._fresh_database()
        self.proxy: TcpProxy | None = None
        # The workers' database: through the proxy on PostgreSQL, so it can be cut off alone.
        worker_url = self.url
        if backend == "postgresql":
            parsed = make_url(self.url)
            self.proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
            worker_url = parsed.set(host="127.0.0.1", port=self.proxy.port).render_as_string(
                hide_password=False)
        self.config = folder / "config.toml"
        self.env = {**os.environ, "MAILER_CONFIG": str(self.config),
                    "MAILER_DATABASE_URL": worker_url, "MAILER_SECRET_KEY": SECRET,
                    "PYTHONPATH": str(ROOT)}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.campaign_id = 0

    def _fresh_database(self) -> str:
        if self.backend == "sqlite":
            path = self.folder / "faults.db"
            path.unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            url = self.args.postgres
            parsed = make_url(url)
            admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
            admin.dispose()
        engine = make_engine(url)
        upgrade_schema(engine)
        engine.dispose()
        return url

    def configure(self, **delivery: Any) -> None:
        s = self.args.scale
        values = {"lease_seconds": max(600 * s, 1.0), "outage_retry_seconds": 30 * s,
                  "outage_retry_max_seconds": 600 * s, "poll_seconds": 0.2,
                  "batch_size": 50, "shutdown_seconds": 5, **delivery}
        lines = [f'data_dir = "{self.folder}"', "", "[smtp]", 'host = "127.0.0.1"',
                 f"port = {self.relay.port}", "timeout_seconds = 5",
                 f"rate_per_second = {self.args.rate}", "", "[delivery]"]
        lines += [f"{k} = {v}" for k, v in values.items()]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("MAILER_")})

    def campaign(self) -> int:
        """A fresh campaign to --count new people on its own list."""
        self.relay.received.clear()
        app = build_app(load_settings())
        try:
            with session_scope(app.sessions) as session:
                slug = f"l{int(time.monotonic() * 1000)}"
                subscribers.create_list(session, slug, slug)
                for n in range(self.args.count):
                    subscribers.add_subscriber(session, SubscriberData(
                        email=f"{slug}-{n}@gemeente.example.nl", name=f"Persoon {n}"),
                        lists=[slug])
            content = self.folder / "nieuws.md"
            content.write_text("---\nsubject: Nieuws\n---\nBeste {{ subscriber.name }},\n",
                               encoding="utf-8")
            with session_scope(app.sessions) as session:
                campaign = campaigns.create_campaign(
                    session, app.settings, app.signer, content_file=content,
                    audience=campaigns.AudienceSpec(lists=[slug]))
                campaign_id = campaign.id
            with session_scope(app.sessions) as session:
                campaigns.start(session, campaign_id)
        finally:
            app.close()
        self.emails = {f"{slug}-{n}@gemeente.example.nl" for n in range(self.args.count)}
        self.campaign_id = campaign_id
        return campaign_id

    def statuses(self) -> dict[str, str]:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return dict(conn.execute(select(Delivery.email, Delivery.status).where(
                    Delivery.campaign_id == self.campaign_id)).all())
        finally:
            engine.dispose()

    def count(self, status: str) -> int:
        """Deliveries of the current campaign in `status`."""
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                return int(conn.scalar(select(func.count()).where(
                    Delivery.status == status, Delivery.campaign_id == self.campaign_id)))
        finally:
            engine.dispose()

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*MAILER, "worker", *args], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def finish(self) -> None:
        """A fresh worker delivers whatever is left."""
        proc = self.worker("--until-idle")
        proc.wait(600)

    def result(self, name: str, in_flight: set[str]) -> str:
        got = self.relay.rcpts()
        lost = len(self.emails - set(got))
        beyond = sum(n - 1 for rcpt, n in got.items() if n > 1 and rcpt not in in_flight)
        dups = sum(n - 1 for n in got.values() if n > 1)
        peak = self.relay.peak_per_second()
        return (f"{self.backend:<10} {name:<34} lost {lost:>3}   duplicates beyond in flight "
                f"{beyond:>3} (all duplicates {dups:>3}, in flight {len(in_flight):>3})   "
                f"peak {peak:>4}/s (limit {self.args.rate})")

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(Exception):
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
        self.relay.stop()
        if self.proxy is not None:
            self.proxy.cut()


def in_flight_now(bench: Bench) -> set[str]:
    return {e.lower() for e, st in bench.statuses().items() if st == "sending"}


def kill9(bench: Bench, moment: str) -> str:
    bench.configure()
    bench.campaign()
    total = bench.args.count
    if moment == "right after a claim":
        bench.relay.stall()
    proc = bench.worker()
    conditions = {
        "right after a claim": lambda: bench.count("sending") > 0,
        "early (10% received)": lambda: bench.relay.count() >= total // 10,
        "mid-campaign (50% received)": lambda: bench.relay.count() >= total // 2,
        "just after a record (50% sent)": lambda: bench.count("sent") >= total // 2,
        "at the last message": lambda: bench.relay.count() >= total,
    }
    wait_until(conditions[moment], timeout=120, what=moment)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    flying = in_flight_now(bench)
    # What reached the relay but was not recorded counts as in flight too: it was `sending`.
    bench.relay.unstall()
    bench.finish()
    return bench.result(f"kill -9 {moment}", flying)


def stalled(bench: Bench) -> str:
    bench.configure(concurrency=2)
    bench.campaign()
    bench.relay.delay = 0.005
    proc = bench.worker()
    wait_until(lambda: bench.relay.count() >= bench.args.count // 5, timeout=120,
               what="20% received")
    stop_outside_a_transaction(proc, bench.url)
    flying = in_flight_now(bench)
    bench.finish()  # takes over once the lease has run out
    proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    bench.relay.delay = 0.0
    return bench.result("stalled worker (SIGSTOP past lease)", flying)


def relay_outage(bench: Bench) -> str:
    bench.configure(max_connection_failures=5)
    campaign_id = bench.campaign()
    proc = bench.worker()
    wait_until(lambda: bench.relay.count() >= bench.args.count // 5, timeout=120,
               what="20% received")
    bench.relay.down()
    down_for = 600 * bench.args.scale
    time.sleep(down_for)  # the outage itself: the fault lasts this long, on purpose
    bench.relay.up()
    wait_until(lambda: bench.count("sent") == bench.args.count, timeout=600,
               what=f"campaign {campaign_id} resumed by itself and finished")
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    # Nothing was in flight for long: messages refused at connect were never handed over.
    return bench.result(f"relay outage 10 min (x{bench.args.scale})", set())


@contextlib.contextmanager
def database_down(bench: Bench) -> Iterator[None]:
    if bench.backend == "sqlite":
        conn = sqlite3.connect(make_url(bench.url).database or "", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.close()
        return
    assert bench.proxy is not None
    bench.proxy.cut()
    try:
        yield
    finally:
        bench.proxy.restore()


def database_outage(bench: Bench) -> str:
    bench.configure()
    bench.campaign()
    bench.relay.delay = 0.002
    proc = bench.worker()
    wait_until(lambda: bench.relay.count() >= bench.args.count // 5, timeout=120,
               what="20% received")
    flying = in_flight_now(bench)
    before = bench.relay.count()
    with database_down(bench):
        time.sleep(60 * bench.args.scale * 10)  # the outage itself (6 s at the default scale)
        during = bench.relay.count() - before
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)
    bench.relay.delay = 0.0
    bench.finish()
    # In flight: what was `sending` before, and what went out while the database was away.
    flying |= {r.rcpt.lower() for r in bench.relay.received[before:before + during]}
    return bench.result(f"database outage 60 s (x{bench.args.scale * 10:g})", flying)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=("sqlite", "postgresql", "both"))
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--postgres", default=os.environ.get(
        "MAILER_FAULT_BENCH_DATABASE_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/gt_fault_bench"))
    parser.add_argument("--only", default="", help="run only scenarios whose name has this")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    moments = ("right after a claim", "early (10% received)", "mid-campaign (50% received)",
               "just after a record (50% sent)", "at the last message")
    for backend in backends:
        with tempfile.TemporaryDirectory() as folder:
            bench = Bench(backend, args, Path(folder))
            runs: list[tuple[str, Callable[..., str], tuple[Any, ...]]] = [
                (f"kill -9 {m}", kill9, (bench, m)) for m in moments]
            runs += [("stalled", stalled, (bench,)), ("relay outage", relay_outage, (bench,)),
                     ("database outage", database_outage, (bench,))]
            try:
                for name, run, run_args in runs:
                    if args.only in name:
                        print(run(*run_args), flush=True)
            finally:
                bench.close()


if __name__ == "__main__":
    main()
