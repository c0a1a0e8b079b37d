"""metric snapshots

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "skyline_metric_snapshots"
FIGURES = (
    "interval_s",
    "throughput",
    "runtime_avg_ms",
    "runtime_max_ms",
    "wait_p50_ms",
    "wait_p95_ms",
    "wait_max_ms",
)
COUNTS = ("processed", "failed", "pushed")
KINDS = "kind IN ('job', 'queue')"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in FIGURES),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.CheckConstraint(KINDS, name=op.f("ck_skyline_metric_snapshots_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skyline_metric_snapshots")),
    )
    op.create_index(op.f("ix_skyline_metric_snapshots_taken_at"), TABLE, ["taken_at"])
    op.create_index("ix_skyline_metric_snapshots_series", TABLE, ["kind", "name", "taken_at"])


def downgrade() -> None:
    op.drop_table(TABLE)
