"""bounce reasons: a reason per bounce record, and paused receiving domains

Revision ID: 0006
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bounces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=32), nullable=False,
                                      server_default="unknown"))
        batch_op.add_column(sa.Column("held", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.create_index("ix_bounces_reason_received", ["reason", "received_at"])
    op.create_table(
        "domain_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("attempted", sa.Integer(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_pauses")),
    )
    with op.batch_alter_table("domain_pauses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_domain_pauses_domain"), ["domain"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("domain_pauses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_domain_pauses_domain"))
    op.drop_table("domain_pauses")
    with op.batch_alter_table("bounces", schema=None) as batch_op:
        batch_op.drop_index("ix_bounces_reason_received")
        batch_op.drop_column("held")
        batch_op.drop_column("reason")
