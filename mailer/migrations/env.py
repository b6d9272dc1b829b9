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


def _include_object(obj: object, name: str | None, type_: str, reflected: bool,
                    compare_to: object) -> bool:
    # APScheduler's job store keeps its own table in our database (service.scheduler.JOB_TABLE);
    # it is not ours to migrate, so autogenerate must not propose dropping it.
    return not (type_ == "table" and name == "apscheduler_jobs")


config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
