"""jobs.dispatched_at: when the broker accepted the current stage's message

Revision ID: b7d2e4f1a903
Revises: 67e48a061ad3
Create Date: 2026-11-25 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7d2e4f1a903"
down_revision: str | None = "67e48a061ad3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
    # jobs queued before this column existed were sent when they were queued: do not re-send
    op.execute("UPDATE jobs SET dispatched_at = queued_at WHERE status = 'queued'")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dispatched_at")
