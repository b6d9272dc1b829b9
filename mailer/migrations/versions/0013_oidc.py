"""oidc: sign-in flows on their way through the identity provider; one account per identity

`console_oidc_flows` holds the state, nonce and PKCE verifier of an OpenID Connect sign-in
between the redirect to the provider and its callback (used once, then deleted). The
`oidc_subject` column exists since 0008; it gets a unique index over the accounts that have one.

Revision ID: 0013
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_SUBJECT = sa.text("oidc_subject <> ''")


def upgrade() -> None:
    op.create_table('console_oidc_flows',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('binding', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('replaces', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_oidc_flows'))
    )
    with op.batch_alter_table('console_oidc_flows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_oidc_flows_created_at'), ['created_at'], unique=False)
    with op.batch_alter_table('console_users', schema=None) as batch_op:
        batch_op.create_index('uq_console_users_oidc_subject', ['oidc_subject'], unique=True,
                              sqlite_where=_HAS_SUBJECT, postgresql_where=_HAS_SUBJECT)


def downgrade() -> None:
    with op.batch_alter_table('console_users', schema=None) as batch_op:
        batch_op.drop_index('uq_console_users_oidc_subject')
    with op.batch_alter_table('console_oidc_flows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_oidc_flows_created_at'))
    op.drop_table('console_oidc_flows')
