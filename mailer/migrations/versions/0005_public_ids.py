"""links name people by a random public id; ids in links never reused on SQLite; public lists;
sign-up requests for known addresses wait for confirmation

Revision ID: 0005
Revises: 0009
Create Date: 2026-12-01

On SQLite the tables whose ids appear in links (subscribers, lists, campaigns, deliveries,
events) are rebuilt with AUTOINCREMENT, so a deleted row's id is never handed out again; env.py
turns foreign keys off around the migration, as SQLite's table rebuild requires (else the drop
of the old table would cascade), and checks them afterwards. PostgreSQL sequences never reuse.
Existing lists become not public: staff mark the ones for the sign-up form (see README).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REBUILT = ("lists", "campaigns", "deliveries", "events")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.add_column("subscribers", sa.Column("public_id", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM subscribers"))]
    for subscriber_id in ids:
        bind.execute(sa.text("UPDATE subscribers SET public_id = :p WHERE id = :i"),
                     {"p": secrets.token_urlsafe(16), "i": subscriber_id})
    table_kwargs = {"sqlite_autoincrement": True} if sqlite else {}
    with op.batch_alter_table("subscribers", recreate="always" if sqlite else "auto",
                              table_kwargs=table_kwargs) as batch_op:
        batch_op.alter_column("public_id", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_subscribers_public_id"), ["public_id"])

    op.add_column("lists", sa.Column("public", sa.Boolean(), server_default=sa.false(),
                                     nullable=False))
    if sqlite:
        for table in REBUILT:
            with op.batch_alter_table(table, recreate="always", table_kwargs=table_kwargs):
                pass

    op.create_table(
        "signup_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"],
                                name=op.f("fk_signup_requests_subscriber_id_subscribers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_requests")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signup_requests_created_at"), ["created_at"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_signup_requests_subscriber_id"), ["subscriber_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signup_requests_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_signup_requests_created_at"))
    op.drop_table("signup_requests")
    with op.batch_alter_table("lists", schema=None) as batch_op:
        batch_op.drop_column("public")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_subscribers_public_id"), type_="unique")
        batch_op.drop_column("public_id")
