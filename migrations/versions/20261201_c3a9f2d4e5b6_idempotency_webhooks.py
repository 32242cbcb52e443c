"""idempotency keys, webhooks, tracks uploaded with a conversion

Revision ID: c3a9f2d4e5b6
Revises: b7d2e4f1a903
Create Date: 2026-12-01 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3a9f2d4e5b6"
down_revision: str | None = "b7d2e4f1a903"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_idempotency_keys_user_id_users"),
            nullable=False,
        ),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("response", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("webhook_secret", sa.String(100), nullable=True))
        batch.add_column(sa.Column("webhook_url", sa.String(2000), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("webhook_url", sa.String(2000), nullable=True))
        batch.add_column(sa.Column("webhook", sa.JSON, nullable=True))
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(
            sa.Column("conversion_upload", sa.Boolean, nullable=False, server_default="0")
        )
    # every source track so far came with its conversion
    op.execute("UPDATE tracks SET conversion_upload = (role = 'source')")


def downgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.drop_column("conversion_upload")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("webhook")
        batch.drop_column("webhook_url")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_table("idempotency_keys")
