"""The database schema as use cases: create or upgrade it, and say where it stands.

Both take an App built without the schema check (`build_app(settings, check_schema=False)`):
they are what a database that is empty or behind needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailer.database.connect import schema_status, upgrade_schema

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["SchemaState", "upgrade", "status"]


@dataclass(frozen=True)
class SchemaState:
    """The revision the database is at (None: empty) and the one this version needs."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def upgrade(app: App) -> SchemaState:
    """Bring the schema to this version's newest migration; where it was before."""
    current, head = schema_status(app.engine)
    upgrade_schema(app.engine)
    return SchemaState(current, head)


def status(app: App) -> SchemaState:
    current, head = schema_status(app.engine)
    return SchemaState(current, head)
