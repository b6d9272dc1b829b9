"""Send N personalised newsletters through the real code path to Postfix's smtp-sink.

Run by hand (not part of the test suite):

    .venv/bin/python bench/send_bench.py [--count 10000] [--backend sqlite|postgresql|both]
        [--workers 1] [--connections 8] [--postgres URL]

For each backend: a fresh database with N subscribers, the sample Dutch newsletter as a
campaign, the audience snapshot (`campaigns.start`), then `mailer worker --until-idle` process(es)
deliver everything to `smtp-sink` on loopback: claim, recipient query, render, SMTP, and the
per-recipient log in the deliveries table. Reported: messages/s end to end (from the workers'
start to their exit, start-up included), the steady rate between the first and last recorded
send, peak RSS of each worker process, and `smtp-source` with the same message size and
total connection count (each connection reused, `-d`) into the same sink, as the C limit our
rate is a fraction of.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailer.app import build_app  # noqa: E402
from mailer.campaigns import service as campaigns  # noqa: E402
from mailer.campaigns.models import Delivery  # noqa: E402
from mailer.database.connect import make_engine, session_scope, upgrade_schema  # noqa: E402
from mailer.settings import load_settings  # noqa: E402
from subscribers import queries as sq  # noqa: E402
from subscribers.models import new_public_id, utcnow  # noqa: E402

SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
REGIONS = ("Noord", "Oost", "Zuid", "West", "Midden")
FIRST = ("Anna", "Jan", "Eva", "Pieter", "Sanne", "Daan", "Fleur", "Jeroen", "Inge", "Kees")
LAST = ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Bos", "Mulder")
SECRET = "bench-secret-key-0123456789abcdefghij"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink(port: int) -> subprocess.Popen[bytes]:
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([SINK, *user, f"127.0.0.1:{port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    raise SystemExit("smtp-sink did not start")


def fresh_postgres(url: str) -> str:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    return url


def populate(url: str, count: int) -> None:
    engine = make_engine(url)
    upgrade_schema(engine)
    engine.dispose()
    os.environ["MAILER_DATABASE_URL"] = url
    app = build_app(load_settings())
    now = utcnow()
    with session_scope(app.sessions) as session:
        from subscribers import service

        ml = service.create_list(session, "nieuwsbrief", "GT Nieuwsbrief")
        list_id = ml.id
    for start in range(0, count, 5000):
        rows = []
        for i in range(start, min(start + 5000, count)):
            email = f"medewerker.{i}@gemeente{i % 342}.example.nl"
            rows.append({
                "email": email, "email_key": email, "name": f"{FIRST[i % 10]} {LAST[i % 8]}",
                "organisation": f"Gemeente {i % 342}", "job_title": "Adviseur ICT",
                "region": REGIONS[i % 5], "language": "en" if i % 10 == 0 else "nl",
                "status": "active", "attributes": {"contract": f"GT-{i % 97}"},
                "consent_at": now, "consent_source": "import", "consent_by": "bench",
                "created_at": now, "updated_at": now, "public_id": new_public_id(),
            })
        with session_scope(app.sessions) as session:
            ids = sq.insert_subscribers(session, rows)
            sq.insert_subscriptions(session, [
                {"subscriber_id": sid, "list_id": list_id, "status": "active",
                 "confirmed_at": now, "created_at": now, "updated_at": now,
                 "unsubscribed_at": None} for sid in ids.values()
            ])
    content = ROOT / "templates" / "content" / "voorbeeld-nieuwsbrief.md"
    with session_scope(app.sessions) as session:
        campaign = campaigns.create_campaign(
            session, app.settings, app.signer, content_file=content,
            audience=campaigns.AudienceSpec(lists=["nieuwsbrief"]),
        )
        campaign_id = campaign.id
    with session_scope(app.sessions) as session:
        campaigns.start(session, campaign_id)
    app.close()


def message_size(url: str) -> int:
    """The size of one rendered message of the campaign (for smtp-source)."""
    os.environ["MAILER_DATABASE_URL"] = url
    app = build_app(load_settings())
    from mailer.compose import build_renderer, sample_recipient

    with session_scope(app.sessions) as session:
        campaign = campaigns.get_campaign(session, 1)
        renderer = build_renderer(session, campaign, app.settings, app.signer)
        size = len(renderer.message_bytes(sample_recipient(app.settings)))
    app.close()
    return size


def deliver(url: str, workers: int, env: dict[str, str]) -> tuple[float, list[int]]:
    """Run the worker processes; (seconds, peak RSS in KiB of each)."""
    env = {**env, "MAILER_DATABASE_URL": url}
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "mailer", "worker", "--until-idle"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(workers)]
    peaks = []
    for proc in procs:
        _pid, status, usage = os.wait4(proc.pid, 0)
        output = proc.stdout.read().decode() if proc.stdout else ""
        if status != 0:
            raise SystemExit(f"worker failed:\n{output}")
        peaks.append(int(usage.ru_maxrss))
    return time.monotonic() - started, peaks


def steady_rate(url: str) -> tuple[int, float]:
    engine = make_engine(url)
    with engine.connect() as conn:
        sent, first, last = conn.execute(
            select(func.count(), func.min(Delivery.sent_at), func.max(Delivery.sent_at))
            .where(Delivery.status == "sent")
        ).one()
    engine.dispose()
    if isinstance(first, str):
        from datetime import datetime

        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    span = (last - first).total_seconds() if first and last else 0.0
    return int(sent), (sent / span if span else 0.0)


def smtp_source(port: int, size: int, count: int, sessions: int) -> float:
    """smtp-source's rate: `sessions` parallel connections, each reused (-d) like ours."""
    started = time.monotonic()
    subprocess.run([SOURCE, "-d", "-s", str(sessions), "-l", str(size), "-m", str(count),
                    f"127.0.0.1:{port}"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (PostgreSQL)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get(
        "MAILER_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gt_send_bench"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gt-send-bench-"))
    port = free_port()
    sink = start_sink(port)
    config = work / "config.toml"
    text_ = (ROOT / "config.toml").read_text(encoding="utf-8")
    text_ = text_.replace('data_dir = "var"', f'data_dir = "{work / "var"}"')
    text_ = text_.replace("port = 2525", f"port = {port}")
    text_ = text_.replace("max_connections = 4", f"max_connections = {args.connections}")
    text_ = text_.replace("concurrency = 8", f"concurrency = {args.connections}")
    text_ = text_.replace("batch_size = 500", f"batch_size = {args.batch_size}")
    config.write_text(text_, encoding="utf-8")
    env = {**os.environ, "MAILER_CONFIG": str(config), "MAILER_SECRET_KEY": SECRET}
    os.environ.update({"MAILER_CONFIG": str(config), "MAILER_SECRET_KEY": SECRET})

    results = []
    try:
        backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
        size = 0
        for backend in backends:
            url = (f"sqlite:///{work / 'bench.db'}" if backend == "sqlite"
                   else fresh_postgres(args.postgres))
            workers = args.workers if backend == "postgresql" else 1
            t0 = time.monotonic()
            populate(url, args.count)
            setup = time.monotonic() - t0
            size = size or message_size(url)
            seconds, peaks = deliver(url, workers, env)
            sent, steady = steady_rate(url)
            results.append({
                "backend": backend, "messages": args.count, "sent": sent, "workers": workers,
                "connections": args.connections, "setup_seconds": round(setup, 1),
                "seconds": round(seconds, 2), "messages_per_second": round(sent / seconds),
                "steady_messages_per_second": round(steady),
                "peak_rss_mb": [round(kib / 1024) for kib in peaks],
                "message_bytes": size,
            })
            if sent != args.count:
                raise SystemExit(f"{backend}: only {sent} of {args.count} sent")
        c_rate = smtp_source(port, size, min(args.count, 20000),
                             args.connections * max(args.workers, 1))
        for row in results:
            row["smtp_source_messages_per_second"] = round(c_rate)
            row["fraction_of_smtp_source"] = round(row["messages_per_second"] / c_rate, 2)
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(5)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for row in results:
        print(f"{row['backend']:<10} {row['sent']:>7} messages, {row['workers']} worker(s) x "
              f"{row['connections']} connections: {row['messages_per_second']:>5} msg/s end to "
              f"end ({row['seconds']} s), steady {row['steady_messages_per_second']} msg/s, "
              f"peak RSS {row['peak_rss_mb']} MB, {row['message_bytes']} bytes/message; "
              f"smtp-source {row['smtp_source_messages_per_second']} msg/s -> "
              f"{row['fraction_of_smtp_source']:.0%}")


if __name__ == "__main__":
    main()
