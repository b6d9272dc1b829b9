"""How much memory the bounce receiver takes under a flood of oversized messages.

Run by hand (not part of the test suite):

    .venv/bin/python bench/receiver_memory_bench.py [--sessions 12] [--mib 64]

Starts the receiver (SQLite in a temporary folder, the default limits) in this process, opens
`--sessions` connections at once and streams a `--mib` MiB message down each, then prints the
receiver's resident memory before and at its peak. With the limits, sessions beyond
bounces.receiver_max_sessions get 421 and each message is dropped past receiver_max_bytes; the
data is spooled to disk past 256 KiB and messages are parsed one at a time, so the growth stays
near max_sessions × 256 KiB plus the parse of one message (`--mib 9`: stored, not refused).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import smtplib
import tempfile
import threading
from pathlib import Path

from mailer.app import build_app
from mailer.database.connect import make_engine, upgrade_schema
from mailer.intake.receiver import serve
from mailer.settings import load_settings


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def flood(port: int, mib: int, results: list[str]) -> None:
    line = b"x" * 998 + b"\r\n"
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
            smtp.ehlo("bench")
            smtp.mail("bench@example.org")
            smtp.rcpt("bounces+1-aaaaaaaaaaaaaaaa@bounces.gt.example.nl")
            smtp.putcmd("data")
            smtp.getreply()
            for _ in range(mib * 1024 * 1024 // len(line)):
                smtp.send(line)
            smtp.send(b".\r\n")
            results.append(str(smtp.getreply()[0]))
    except smtplib.SMTPConnectError as exc:
        results.append(str(exc.smtp_code))
    except (OSError, smtplib.SMTPException) as exc:
        results.append(type(exc).__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="receiver-bench-"))
    os.environ["MAILER_DATABASE_URL"] = f"sqlite:///{folder / 'mailer.db'}"
    os.environ.setdefault("MAILER_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    settings = load_settings()
    engine = make_engine(settings.database.url)
    upgrade_schema(engine)
    engine.dispose()
    app = build_app(settings)

    async def scenario() -> None:
        stop = asyncio.Event()
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(app, stop, host="127.0.0.1", port=0,
                                         ready=ready.set_result))
        port = await ready
        before = rss_mib()
        results: list[str] = []
        threads = [threading.Thread(target=flood, args=(port, args.mib, results))
                   for _ in range(args.sessions)]
        for thread in threads:
            thread.start()
        # One waiter for all: a waiter per thread could take every worker of the default
        # executor, which the receiver needs to ingest what it accepted.
        await asyncio.to_thread(lambda: [thread.join() for thread in threads])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        stop.set()
        await task
        print(f"{args.sessions} sessions × {args.mib} MiB: replies {sorted(results)}")
        print(f"RSS before {before:.0f} MiB, peak {peak:.0f} MiB (Δ {peak - before:.0f} MiB); "
              f"limits: {settings.bounces.receiver_max_sessions} sessions, "
              f"{settings.bounces.receiver_max_bytes // 1024 // 1024} MiB")

    asyncio.run(scenario())
    app.close()


if __name__ == "__main__":
    main()
