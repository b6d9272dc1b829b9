"""Database engine, sessions and the schema version check; the one place engines are made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailer.errors import ConfigError, SchemaError

__all__ = [
    "make_engine",
    "make_sessionmaker",
    "session_scope",
    "upgrade_schema",
    "schema_status",
    "require_current_schema",
]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for SQLite (embedded default) or PostgreSQL, tuned for concurrent workers."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url: not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the web pages read while a worker writes; foreign keys are off by default.
            dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" hook below issues BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Take the write lock at BEGIN: avoids "database is locked" upgrades mid-transaction.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    raise ConfigError(f"database.url: only sqlite and postgresql are supported, got {url!r}")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed if the block succeeds, rolled back (losing nothing) if not."""
    with factory() as session, session.begin():
        yield session


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to the newest migration shipped with this version."""
    command.upgrade(_alembic_config(engine), revision)


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(revision the database is at, newest revision this code knows)."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    assert head is not None
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        # The driver's message may run over several lines (libpq adds a hint); one is enough.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise SchemaError(f"cannot open the database: {reason}") from None
    return current, head


def require_current_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is missing or behind this code."""
    current, head = schema_status(engine)
    if current is None:
        raise SchemaError("the database has no schema yet; run `mailer db upgrade`")
    if current != head:
        script = ScriptDirectory.from_config(_alembic_config(engine))
        known = {rev.revision for rev in script.walk_revisions()}
        if current not in known:
            raise SchemaError(
                f"the database schema ({current}) is newer than this version of GT Mailer"
            )
        raise SchemaError(
            f"the database schema is behind ({current}, this version needs {head}); "
            "run `mailer db upgrade`"
        )
