"""web tables: rate-limit counters of the public forms

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_rate_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bucket", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_rate_events")),
    )
    with op.batch_alter_table("web_rate_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_rate_events_at"), ["at"], unique=False)
        batch_op.create_index(
            "ix_web_rate_events_bucket_key_at", ["bucket", "key", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("web_rate_events", schema=None) as batch_op:
        batch_op.drop_index("ix_web_rate_events_bucket_key_at")
        batch_op.drop_index(batch_op.f("ix_web_rate_events_at"))
    op.drop_table("web_rate_events")
