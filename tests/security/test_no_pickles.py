"""Finding 2: pickles from the database. A row planted in APScheduler's old job table (or a table
made for it on a database that never had one) holds a pickle that creates a marker file when
loaded. `mailer db upgrade` and `mailer run` must never load it: the schedule is rebuilt from the
campaign rows, in memory."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_support import create_campaign, make_audience, set_config
from security_support import MAILER, read_until
from smtp_support import SmtpServer
from sqlalchemy import Column, Float, LargeBinary, MetaData, Table, Unicode, inspect

from mailer.app import App, build_app
from mailer.campaigns import service as campaigns
from mailer.database.connect import make_engine, session_scope, upgrade_schema
from mailer.settings import load_settings


class Payload:
    """Unpickling this runs `touch marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def plant(engine, marker: Path) -> None:
    """APScheduler 3's job table, as its SQLAlchemy job store made it, with a poisoned job."""
    table = Table(
        "apscheduler_jobs", MetaData(),
        Column("id", Unicode(191), primary_key=True),
        Column("next_run_time", Float(25), index=True),
        Column("job_state", LargeBinary, nullable=False),
    )
    table.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(table.insert().values(
            id="campaign:1", next_run_time=dt.datetime.now(dt.UTC).timestamp(),
            job_state=pickle.dumps(Payload(marker)),
        ))


@pytest.fixture
def relay() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def svc_app(env, config_file: Path, relay: SmtpServer) -> Iterator[App]:
    set_config(config_file, smtp__port=relay.port, delivery__poll_seconds=0.2)
    app = build_app(load_settings())
    yield app
    app.close()


def test_the_service_loads_no_planted_job(svc_app, relay, tmp_path: Path):
    marker = tmp_path / "pwned"
    plant(svc_app.engine, marker)
    make_audience(svc_app.sessions, 2)
    campaign_id = create_campaign(svc_app, tmp_path)
    with session_scope(svc_app.sessions) as session:
        campaigns.schedule(session, campaign_id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    proc = subprocess.Popen([*MAILER, "run"], env=os.environ.copy(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Its schedule came from the campaign row, not from the planted table.
        read_until(proc, f"Campaign {campaign_id} waits for")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert not marker.exists()


def test_upgrade_drops_the_old_job_table_unread(db_url: str, tmp_path: Path):
    marker = tmp_path / "pwned"
    # A database as the previous version left it: at revision 0007, with its job table.
    if db_url.startswith("sqlite"):
        db_url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            for name in inspect(conn).get_table_names():
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}" CASCADE'
                                     if engine.dialect.name == "postgresql"
                                     else f'DROP TABLE IF EXISTS "{name}"')
        upgrade_schema(engine, "0007")
        plant(engine, marker)
        upgrade_schema(engine)
        with engine.connect() as conn:
            assert "apscheduler_jobs" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    assert not marker.exists()


def test_no_module_of_ours_unpickles():
    root = Path(__file__).resolve().parents[2]
    for folder in ("mailer", "subscribers"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for word in ("import pickle", "PickleType", "SQLAlchemyJobStore", "shelve"):
                assert word not in text, f"{path}: {word}"
