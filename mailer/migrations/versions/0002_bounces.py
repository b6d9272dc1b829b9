"""bounces: received bounce messages, per-recipient bounce records, soft-bounce scores

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('bounce_messages',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('envelope_from', sa.String(length=998), nullable=False),
    sa.Column('envelope_to', sa.Text(), nullable=False),
    sa.Column('from_header', sa.String(length=998), nullable=False),
    sa.Column('subject', sa.String(length=998), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('truncated', sa.Boolean(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bounce_messages')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_bounce_messages_fingerprint'))
    )
    with op.batch_alter_table('bounce_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bounce_messages_received_at'), ['received_at'], unique=False)

    op.create_table('bounce_scores',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('last_point_on', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_bounce_scores_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id', name=op.f('pk_bounce_scores'))
    )
    op.create_table('bounces',
    sa.Column('id', BIGINT, nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('diagnostic', sa.Text(), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('message_id', BIGINT, nullable=True),
    sa.Column('delivery_id', BIGINT, nullable=True),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('matched_by', sa.String(length=16), nullable=False),
    sa.Column('token_valid', sa.Boolean(), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_bounces_campaign_id_campaigns'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_bounces_delivery_id_deliveries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['message_id'], ['bounce_messages.id'], name=op.f('fk_bounces_message_id_bounce_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_bounces_subscriber_id_subscribers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bounces')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_bounces_dedupe_key'))
    )
    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.create_index('ix_bounces_campaign_kind', ['campaign_id', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounces_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index('ix_bounces_kind_received', ['kind', 'received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounces_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounces_subscriber_id'), ['subscriber_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bounces_subscriber_id'))
        batch_op.drop_index(batch_op.f('ix_bounces_message_id'))
        batch_op.drop_index('ix_bounces_kind_received')
        batch_op.drop_index(batch_op.f('ix_bounces_delivery_id'))
        batch_op.drop_index('ix_bounces_campaign_kind')
    op.drop_table('bounces')
    op.drop_table('bounce_scores')
    with op.batch_alter_table('bounce_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bounce_messages_received_at'))
    op.drop_table('bounce_messages')
