"""organizer token: events.organizer_format, the shape of a meeting's ORGANIZER reply address

The ORGANIZER of an invitation (rsvp+<token>@...) now carries the person's and the meeting's
row ids sealed (kernel.tokens) instead of in base36. Outlook and Gmail take an update or a
cancellation as the same meeting only from the same ORGANIZER, so a meeting keeps the shape its
first mail had: every meeting that exists at this upgrade is `legacy` (its invitations may be
out), meetings made after it are `sealed` (the model's default).

Revision ID: 0014_organizer_token
Revises: 0016
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_organizer_token"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN with a constant default: no table rebuild on SQLite, existing rows get it.
    op.add_column("events", sa.Column("organizer_format", sa.String(length=16), nullable=False,
                                      server_default="legacy"))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch rebuild would lose events' AUTOINCREMENT.
    op.drop_column("events", "organizer_format")
