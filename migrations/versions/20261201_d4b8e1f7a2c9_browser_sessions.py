"""browser sessions: the UI's cookie holds a session id, not the API token

Revision ID: d4b8e1f7a2c9
Revises: c3a9f2d4e5b6
Create Date: 2026-12-01 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4b8e1f7a2c9"
down_revision: str | None = "c3a9f2d4e5b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "browser_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_browser_sessions_user_id_users"),
            nullable=False,
        ),
        sa.Column(
            "token_id",
            sa.String(36),
            sa.ForeignKey(
                "api_tokens.id", ondelete="CASCADE", name="fk_browser_sessions_token_id_api_tokens"
            ),
            nullable=False,
        ),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_browser_sessions"),
        sa.UniqueConstraint("secret_hash", name="uq_browser_sessions_secret_hash"),
    )
    op.create_index("ix_browser_sessions_user_id", "browser_sessions", ["user_id"])
    op.create_index("ix_browser_sessions_token_id", "browser_sessions", ["token_id"])
    op.create_index("ix_browser_sessions_expires_at", "browser_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("browser_sessions")
