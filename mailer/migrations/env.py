"""Alembic environment: runs migrations on the engine GT Mailer hands it (mailer.database)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

import mailer.database.tables  # noqa: F401  (registers every table on Base.metadata)
from subscribers.models import Base, UTCDateTime


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations must not import application types: UTCDateTime is a timezone-aware DateTime.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
engine = config.attributes["engine"]

def _sqlite_foreign_keys(connection: Any, on: bool) -> None:
    # Rebuilding a table (batch mode) drops the old one, and with foreign keys on that drop
    # cascades into every referencing table. SQLite's own recipe: keys off for the rebuild
    # (only possible outside a transaction, so on the raw connection), checked afterwards.
    raw = connection.connection.dbapi_connection
    raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(connection, False)
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"foreign keys broken by the migration: {broken[:5]}")
        connection.commit()
    finally:
        if sqlite:
            connection.rollback()
            _sqlite_foreign_keys(connection, True)
