"""Shared fixtures: a real database on both backends, settings, and the CLI.

Every test that takes `db_url` (or anything built on it) runs twice: on a SQLite file and on
PostgreSQL. The PostgreSQL URL comes from MAILER_TEST_DATABASE_URL (default: the local server,
database `test`). Each test worker gets its own schema, migrated once and emptied between tests.
Under CI=true an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # Starlette's notice about its future httpx successor
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from browser_support import launch_chromium
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient
from web_support import BASE

from mailer.app import App, build_app
from mailer.cli import cli
from mailer.database.connect import make_engine, upgrade_schema
from mailer.delivery.capture import CaptureServer
from mailer.settings import DEFAULT_CONFIG, Settings, load_settings
from mailer.web.app import create_web_app

PG_URL = os.environ.get(
    "MAILER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SECRET = "test-secret-key-0123456789abcdef"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]


def _trigrams_in_public(admin: Engine) -> None:
    """pg_trgm (the subscriber search index, migration 0013_people) in `public`, before any
    worker migrates its schema: an extension is one per database, and made by a worker's
    migration it would live in that worker's schema and go with it (DROP SCHEMA ... CASCADE),
    taking the other workers' indexes along."""
    for _attempt in range(3):  # two workers may race to create it
        try:
            with admin.begin() as conn:
                where = conn.execute(text(
                    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                    "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'")).scalar()
                if where is None:
                    conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
                elif where != "public":
                    conn.execute(text("ALTER EXTENSION pg_trgm SET SCHEMA public"))
            return
        except DBAPIError:
            continue


@pytest.fixture(scope="session")
def pg_schema_url(worker_id: str) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of this test worker's own, migrated."""
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable under CI=true: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    schema = f"mt_{worker_id}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    _trigrams_in_public(admin)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    upgrade_schema(engine)
    engine.dispose()
    yield rendered
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "mailer.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


def _empty_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        if names:
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file, or this worker's PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path / "mailer.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_schema_url")
    _empty_pg(url)
    return url


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A copy of the shipped config.toml whose data folder is the test's own."""
    text_ = DEFAULT_CONFIG.read_text(encoding="utf-8")
    text_ = text_.replace('data_dir = "var"', f'data_dir = "{tmp_path / "var"}"')
    path = tmp_path / "config.toml"
    path.write_text(text_, encoding="utf-8")
    return path


@pytest.fixture
def env(db_url: str, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment a `mailer` command gets in tests (also for subprocesses)."""
    values = {
        "MAILER_CONFIG": str(config_file),
        "MAILER_DATABASE_URL": db_url,
        "MAILER_SECRET_KEY": SECRET,
    }
    for key in list(os.environ):
        if key.startswith("MAILER_") and key != "MAILER_TEST_DATABASE_URL":
            monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    built = build_app(settings)
    yield built
    built.close()


@pytest.fixture
def engine(app: App) -> Engine:
    return app.engine


@pytest.fixture
def session(app: App) -> Iterator[Session]:
    """A session in an open transaction, committed at the end of the test if not rolled back."""
    with app.sessions() as sess, sess.begin():
        yield sess


@pytest.fixture
def sessions(app: App) -> sessionmaker[Session]:
    return app.sessions


@pytest.fixture
def capture(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[CaptureServer]:
    """A capture SMTP server the app's settings point at (set before settings are loaded)."""
    server = CaptureServer(tmp_path / "outbox")
    monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
    with server:
        yield server


@pytest.fixture
def client(capture: CaptureServer, app: App) -> Iterator[TestClient]:
    """The subscriber pages in-process, their mail going to `capture`."""
    with TestClient(create_web_app(app), base_url=BASE) as test_client:
        yield test_client


# Module scope, not session: Playwright's sync API allows one instance per thread at a time, and
# each browser test module starts its own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_chromium()


class Cli:
    """Runs `mailer ...` in-process, as a user would type it."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> Result:
        result = self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"mailer {' '.join(args)} exited {result.exit_code}:\n{result.output}"
            )
        return result


@pytest.fixture
def run_cli(env: dict[str, str]) -> Cli:
    return Cli()
