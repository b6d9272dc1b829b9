"""Migration 0002 creates exactly the bounce tables the models describe, on both backends."""

from __future__ import annotations

import uuid

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import PG_URL
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import mailer.database.tables  # noqa: F401  (every table on Base.metadata)
from mailer.database.connect import _alembic_config, make_engine, upgrade_schema
from subscribers.models import Base

BOUNCE_TABLES = {"bounces", "bounce_messages", "bounce_scores"}


def _table_of(diff: object) -> str:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:] if isinstance(item, tuple) else ():
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None and getattr(table, "name", None):
            return str(table.name)
        if isinstance(part, str) and part in BOUNCE_TABLES:
            return part
        if name in BOUNCE_TABLES:
            return str(name)
    return ""


def test_bounce_models_match_the_migration(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = [d for d in compare_metadata(context, Base.metadata)
                     if _table_of(d) in BOUNCE_TABLES]
    finally:
        engine.dispose()
    assert diffs == []


def test_migration_0002_goes_down_and_up(db_url, tmp_path):
    # On a database of its own: a fresh SQLite file, or a fresh PostgreSQL schema.
    if db_url.startswith("sqlite"):
        url, cleanup = f"sqlite:///{tmp_path / 'updown.db'}", None
    else:
        schema = f"updown_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(PG_URL).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)

        def cleanup() -> None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    engine = make_engine(url)
    try:
        upgrade_schema(engine, "0002")
        assert set(inspect(engine).get_table_names()) >= BOUNCE_TABLES
        command.downgrade(_alembic_config(engine), "0001")
        assert not BOUNCE_TABLES & set(inspect(engine).get_table_names())
        upgrade_schema(engine, "0002")
        assert set(inspect(engine).get_table_names()) >= BOUNCE_TABLES
    finally:
        engine.dispose()
        if cleanup is not None:
            cleanup()
