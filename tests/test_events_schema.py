"""The events tables of migration 0004 match the models, on both backends, and go away again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import mailer.database.tables  # noqa: F401  (every table on Base.metadata)
from mailer.app import App
from subscribers.models import Base

EVENT_TABLES = {"events", "rsvps", "rsvp_changes", "event_mails"}


def _names(diff: object) -> set[str]:
    """Table names a compare_metadata entry is about (entries nest for column changes)."""
    found: set[str] = set()
    if isinstance(diff, list):
        for item in diff:
            found |= _names(item)
    elif isinstance(diff, tuple):
        for item in diff:
            name = getattr(item, "name", None)
            table = getattr(item, "table", None)
            if isinstance(item, str):
                found.add(item)
            elif table is not None:
                found.add(str(table.name))
            elif name:
                found.add(str(name))
    return found


def test_models_and_migration_agree(app: App) -> None:
    with app.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        assert tables >= EVENT_TABLES
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    ours = [d for d in diff if _names(d) & EVENT_TABLES]
    assert ours == [], ours


def test_downgrade_removes_the_event_tables(db_url: str) -> None:
    from alembic import command

    from mailer.database.connect import _alembic_config, make_engine, upgrade_schema

    engine = make_engine(db_url)
    try:
        command.downgrade(_alembic_config(engine), "0003")
        with engine.connect() as conn:
            assert not EVENT_TABLES & set(inspect(conn).get_table_names())
        upgrade_schema(engine)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= EVENT_TABLES
    finally:
        engine.dispose()
