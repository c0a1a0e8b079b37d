"""Claude requests

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "skyline_claude_requests"
STATUSES = "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired')"
PRIORITIES = "priority IN ('high', 'normal', 'low')"
TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
MOMENTS = ("started_at", "completed_at", "failed_at", "cancelled_at", "expired_at")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("messages", sa.Text(), nullable=False),
        sa.Column("max_tokens", sa.Integer(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("webhook_url", sa.String(2048), nullable=True),
        sa.Column("batch_id", sa.String(36), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in TOKENS),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.DateTime(timezone=True), nullable=True) for name in MOMENTS),
        sa.CheckConstraint(STATUSES, name=op.f("ck_skyline_claude_requests_status")),
        sa.CheckConstraint(PRIORITIES, name=op.f("ck_skyline_claude_requests_priority")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skyline_claude_requests")),
    )
    op.create_index("ix_skyline_claude_requests_owner_created", TABLE, ["owner", "created_at"])
    op.create_index("ix_skyline_claude_requests_status_created", TABLE, ["status", "created_at"])
    op.create_index("ix_skyline_claude_requests_batch", TABLE, ["batch_id", "status"])


def downgrade() -> None:
    op.drop_table(TABLE)
