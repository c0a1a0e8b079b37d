"""dashboard users, API tokens and the audit log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = "role IN ('viewer', 'operator', 'admin')"


def upgrade() -> None:
    op.create_table(
        "skyline_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(ROLES, name=op.f("ck_skyline_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skyline_users")),
        sa.UniqueConstraint("email", name=op.f("uq_skyline_users_email")),
    )
    op.create_table(
        "skyline_api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(ROLES, name=op.f("ck_skyline_api_tokens_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skyline_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_skyline_api_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_skyline_api_tokens_token_hash")),
    )
    op.create_table(
        "skyline_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skyline_audit_log")),
    )
    op.create_index(op.f("ix_skyline_audit_log_at"), "skyline_audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("skyline_audit_log")
    op.drop_table("skyline_api_tokens")
    op.drop_table("skyline_users")
