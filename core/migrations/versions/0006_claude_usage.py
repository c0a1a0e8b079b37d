"""Claude usage: how many 429 / 529 answers each request got, and time indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 16:30:00

The AI usage page adds up the requests created, and the ones answered, in a recent
window; without an index on each time it would read every request ever kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "skyline_claude_requests"
COUNTERS = ("times_rate_limited", "times_overloaded")


def upgrade() -> None:
    for name in COUNTERS:
        op.add_column(
            TABLE, sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.create_index("ix_skyline_claude_requests_created", TABLE, ["created_at"])
    op.create_index("ix_skyline_claude_requests_completed", TABLE, ["completed_at"])


def downgrade() -> None:
    op.drop_index("ix_skyline_claude_requests_completed", TABLE)
    op.drop_index("ix_skyline_claude_requests_created", TABLE)
    with op.batch_alter_table(TABLE) as batch:
        for name in COUNTERS:
            batch.drop_column(name)
