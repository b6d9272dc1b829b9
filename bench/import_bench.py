"""Time a 100,000-row subscriber import on SQLite and PostgreSQL, with peak memory.

Run by hand (not part of the test suite):

    .venv/bin/python bench/import_bench.py [--rows 100000] [--postgres URL] [--skip-postgres]

It writes a Dutch Excel-style file (`;`, Windows-1252, CRLF, Voornaam/Tussenvoegsel/Achternaam,
an extra column), imports it into a fresh database, then imports it again (the idempotent re-run:
everything unchanged). Each import runs in a child process so its peak memory (ru_maxrss) is its
own; the figure for 10,000 rows is shown beside it to show memory stays flat as rows grow.
Wall time depends on what else the machine is doing, so the load average and the import's own
CPU time are printed too.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mailer.database.connect import make_engine, make_sessionmaker, session_scope, upgrade_schema
from subscribers import service
from subscribers.importer import import_file

REGIONS = ("Noord", "Oost", "Zuid", "West", "Midden")
FIRST = ("Anna", "Jan", "Eva", "Pieter", "Sanne", "Daan", "Fleur", "Jeroen", "Inge", "Kees")
INFIX = ("", "", "de", "van", "van der", "")
LAST = ("Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Bos", "Mulder", "Hoekstra")


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="cp1252", newline="") as fh:
        out = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        out.writerow(
            ["E-mailadres", "Voornaam", "Tussenvoegsel", "Achternaam", "Gemeente", "Regio",
             "Functie", "Taal", "Contractnummer"]
        )
        for i in range(rows):
            out.writerow(
                [f"medewerker.{i}@gemeente{i % 342}.nl", FIRST[i % 10], INFIX[i % 6],
                 LAST[i % 9], f"Gemeente {i % 342} é", REGIONS[i % 5], "Adviseur",
                 "nl" if i % 7 else "en", f"GT-{i:06d}"]
            )


def _import_child(url: str, path: str, queue: multiprocessing.Queue) -> None:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    started = time.perf_counter()
    with session_scope(sessions) as session:
        result = import_file(session, path, lists=["nieuwsbrief"], regions=REGIONS,
                             actor="bench")
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    engine.dispose()
    # CPU time of the importing process: unlike wall time, barely moved by other load on the
    # machine (PostgreSQL's own work runs in the server and is not in it).
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    queue.put({"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
               "peak_mib": round(usage.ru_maxrss / 1024),
               "added": result.added, "unchanged": result.unchanged,
               "rejected": result.rejected})


def timed_import(url: str, path: Path) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_import_child, args=(url, str(path), queue))
    child.start()
    outcome = queue.get()
    child.join()
    return dict(outcome)


def fresh_database(url: str) -> None:
    engine = make_engine(url)
    upgrade_schema(engine)
    with session_scope(make_sessionmaker(engine)) as session:
        service.create_list(session, "nieuwsbrief", "GT Nieuwsbrief")
    engine.dispose()


def run(name: str, url: str, files: dict[int, Path]) -> None:
    for rows, path in files.items():
        fresh_database(url)
        first = timed_import(url, path)
        again = timed_import(url, path)
        print(f"{name:<10} {rows:>7} rows  first import {json.dumps(first)}")
        print(f"{name:<10} {rows:>7} rows  re-run       {json.dumps(again)}")
        print(f"{'':<10} load average now {os.getloadavg()[0]:.1f}")
        if url.startswith("sqlite"):
            Path(make_url(url).database or "").unlink(missing_ok=True)
        else:
            _reset_pg(url)


def _pg_schema(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def _reset_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars().all()
        for name in names:
            conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "MAILER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        files: dict[int, Path] = {}
        for rows in sorted({min(10_000, args.rows), args.rows}):
            files[rows] = Path(folder) / f"import-{rows}.csv"
            write_file(files[rows], rows)
        size = files[args.rows].stat().st_size / 1e6
        print(f"{args.rows} rows, {size:.1f} MB, {os.cpu_count()} CPUs, Python "
              f"{sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
        run("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", files)
        if not args.skip_postgres:
            schema, url = _pg_schema(args.postgres)
            try:
                run("postgresql", url, files)
            finally:
                admin = create_engine(args.postgres)
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
