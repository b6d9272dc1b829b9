"""delivery workers (dead-worker detection) and the relay-outage auto-resume of campaigns

Revision ID: 0007
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('delivery_workers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_workers')),
    sa.UniqueConstraint('name', name=op.f('uq_delivery_workers_name'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resume_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('outage_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('relay_outages', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('relay_outages')
        batch_op.drop_column('outage_since')
        batch_op.drop_column('resume_at')
    op.drop_table('delivery_workers')
