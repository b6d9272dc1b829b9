"""drop APScheduler's job table: the schedule is rebuilt from campaign rows, and its rows were pickles

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The table APScheduler's SQLAlchemy job store created on a service's first start.
JOB_TABLE = "apscheduler_jobs"


def upgrade() -> None:
    # Never read, only dropped: loading a row would unpickle whatever someone planted there.
    if JOB_TABLE in sa.inspect(op.get_bind()).get_table_names():
        op.drop_table(JOB_TABLE)


def downgrade() -> None:
    # Nothing to restore: the old version creates its job table itself on its first start, and
    # rebuilds its jobs from the scheduled campaigns.
    pass
