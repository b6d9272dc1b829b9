"""console speed: a finished campaign's figures kept, indexes for the audience count and the
30-day figures

A finished campaign's delivery counts no longer change except sent → bounced (nothing is open
any more), so they are written once when it finishes (`campaigns.final_counts`) and the campaign
list and page read them instead of counting its deliveries on every request; the bounced part
is still counted live, from the (campaign_id, status) index. Existing finished campaigns get
theirs here.

`lower(region)` is what the audience filter compares, so an index on (status, lower(region))
lets PostgreSQL estimate and find a region's people instead of reading every subscriber;
(action, at) on consent_events finds the sign-ups and unsubscribes of a period.

Revision ID: 0016
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0013_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("final_counts", sa.JSON(), nullable=True))
    op.create_index("ix_subscribers_status_lower_region", "subscribers",
                    ["status", sa.text("lower(region)")], unique=False)
    op.create_index("ix_consent_events_action_at", "consent_events", ["action", "at"],
                    unique=False)
    bind = op.get_bind()
    counts: dict[int, dict[str, int]] = {}
    rows = bind.execute(sa.text(
        "SELECT d.campaign_id, d.status, count(*) FROM deliveries d "
        "JOIN campaigns c ON c.id = d.campaign_id WHERE c.status = 'finished' "
        "GROUP BY d.campaign_id, d.status"))
    for campaign_id, status, n in rows:
        counts.setdefault(int(campaign_id), {})[str(status)] = int(n)
    for campaign_id, found in counts.items():  # one row per finished campaign, not per person
        bind.execute(sa.text("UPDATE campaigns SET final_counts = :v WHERE id = :id"),
                     {"v": json.dumps({"counts": found}), "id": campaign_id})


def downgrade() -> None:
    op.drop_index("ix_consent_events_action_at", table_name="consent_events")
    op.drop_index("ix_subscribers_status_lower_region", table_name="subscribers")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("final_counts")
