"""job batches

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCHES = "skyline_job_batches"
BATCH_JOBS = "skyline_batch_jobs"


def upgrade() -> None:
    op.create_table(
        BATCHES,
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), server_default="", nullable=False),
        sa.Column("total_jobs", sa.Integer(), nullable=False),
        sa.Column("pending_jobs", sa.Integer(), nullable=False),
        sa.Column("failed_jobs", sa.Integer(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caught_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skyline_job_batches")),
    )
    op.create_index(op.f("ix_skyline_job_batches_created_at"), BATCHES, ["created_at"])
    op.create_table(
        BATCH_JOBS,
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            [f"{BATCHES}.id"],
            name=op.f("fk_skyline_batch_jobs_batch_id_skyline_job_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "job_id", name=op.f("pk_skyline_batch_jobs")),
    )


def downgrade() -> None:
    op.drop_table(BATCH_JOBS)
    op.drop_table(BATCHES)
