"""failed jobs

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "skyline_failed_jobs"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("connection", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(191), nullable=False),
        sa.Column("job_name", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("exception_class", sa.String(255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_of", sa.String(36), nullable=True),
        sa.Column("retried_by", sa.String(36), nullable=True),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skyline_failed_jobs")),
    )
    op.create_index(op.f("ix_skyline_failed_jobs_uuid"), TABLE, ["uuid"], unique=True)
    op.create_index(op.f("ix_skyline_failed_jobs_queue"), TABLE, ["queue"])
    op.create_index(op.f("ix_skyline_failed_jobs_job_name"), TABLE, ["job_name"])
    op.create_index(op.f("ix_skyline_failed_jobs_failed_at"), TABLE, ["failed_at"])


def downgrade() -> None:
    op.drop_table(TABLE)
