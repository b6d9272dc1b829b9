"""subscriber search: a trigram index over address, name and organisation (PostgreSQL)

The console searches as staff type, `%text%` in three columns. Without an index PostgreSQL
reads every row of `subscribers` for a search that matches few people (about 0.3-0.7 s for
100,000 on a busy 2-core machine); pg_trgm's GIN index answers the same ILIKE in a few
milliseconds. pg_trgm ships with PostgreSQL and is a trusted extension (13+), so the database
owner may create it; where that is not allowed the migration goes on without the index (the
search still works, reading every row) and logs how to add it by hand. SQLite has no such index
and needs none at this size (its search is about 0.1 s).

Revision ID: 0013_people
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_people"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

INDEX = ("CREATE INDEX IF NOT EXISTS ix_subscribers_search ON subscribers USING gin "
         "(email_key {ops}, name {ops}, organisation {ops})")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():  # a savepoint: a refusal leaves the upgrade going
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            # The extension may live in another schema than ours (it is one per database):
            # name its operator class there.
            schema = bind.exec_driver_sql(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'").scalar_one()
            ops = ".".join(('"' + str(schema).replace('"', '""') + '"', "gin_trgm_ops"))
            bind.exec_driver_sql(INDEX.format(ops=ops))
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        log.warning("subscriber search index not made (%s); the search works without it. "
                    "To add it: CREATE EXTENSION pg_trgm; %s", reason,
                    INDEX.format(ops="gin_trgm_ops"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_subscribers_search")
