"""SQL models: what Skyline keeps after Redis forgets it."""

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones: values go in as UTC and come back naive, so they are
    marked UTC on the way out. Naive values are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Named constraints let SQLite's batch migrations (copy-and-move) find them again.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class FailedJob(Base):
    __tablename__ = "skyline_failed_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, index=True)
    connection: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(191), index=True)
    job_name: Mapped[str] = mapped_column(String(255), index=True)
    payload: Mapped[str] = mapped_column(Text)
    exception_class: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    retry_of: Mapped[str | None] = mapped_column(String(36))
    retried_by: Mapped[str | None] = mapped_column(String(36))
    retried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobBatch(Base):
    __tablename__ = "skyline_job_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    total_jobs: Mapped[int] = mapped_column(Integer)
    pending_jobs: Mapped[int] = mapped_column(Integer)
    failed_jobs: Mapped[int] = mapped_column(Integer)
    options: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    caught_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BatchJob(Base):
    """One row per job of a batch, so a job that runs twice is counted once."""

    __tablename__ = "skyline_batch_jobs"

    batch_id: Mapped[str] = mapped_column(
        String(36), ForeignKey(JobBatch.id, ondelete="CASCADE"), primary_key=True
    )
    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MetricSnapshot(Base):
    """One job name's or one queue's figures over one snapshot interval."""

    __tablename__ = "skyline_metric_snapshots"
    __table_args__ = (
        CheckConstraint("kind IN ('job', 'queue')", name="kind"),
        # A chart reads the series of one name over a time range.
        Index("ix_skyline_metric_snapshots_series", "kind", "name", "taken_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(255))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    interval_s: Mapped[float] = mapped_column(Float)
    throughput: Mapped[float] = mapped_column(Float)  # jobs per minute
    runtime_avg_ms: Mapped[float] = mapped_column(Float)
    runtime_max_ms: Mapped[float] = mapped_column(Float)
    wait_p50_ms: Mapped[float] = mapped_column(Float)
    wait_p95_ms: Mapped[float] = mapped_column(Float)
    wait_max_ms: Mapped[float] = mapped_column(Float)
    processed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    pushed: Mapped[int] = mapped_column(Integer)


class User(Base):
    """A dashboard user: argon2 hash only, never the password."""

    __tablename__ = "skyline_users"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiToken(Base):
    """A token for scripts: only its SHA-256 is kept, so a database leak reveals no token."""

    __tablename__ = "skyline_api_tokens"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    """Who changed what, when, from the dashboard or its API."""

    __tablename__ = "skyline_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text)  # JSON
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)


CLAUDE_STATUSES = (
    "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled', 'expired')"
)


class ClaudeRequest(Base):
    """One Claude API request: what was asked, what came back, what it cost."""

    __tablename__ = "skyline_claude_requests"
    __table_args__ = (
        CheckConstraint(CLAUDE_STATUSES, name="status"),
        CheckConstraint("priority IN ('high', 'normal', 'low')", name="priority"),
        # An owner's requests and the requests in one status, newest first; a batch's progress.
        Index("ix_skyline_claude_requests_owner_created", "owner", "created_at"),
        Index("ix_skyline_claude_requests_status_created", "status", "created_at"),
        Index("ix_skyline_claude_requests_batch", "batch_id", "status"),
        # The AI usage page's windows: requests created, and answered, lately.
        Index("ix_skyline_claude_requests_created", "created_at"),
        Index("ix_skyline_claude_requests_completed", "completed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8))
    model: Mapped[str] = mapped_column(String(128))
    system: Mapped[str | None] = mapped_column(Text, nullable=True)
    messages: Mapped[str] = mapped_column(Text)  # JSON: the Messages API's list
    max_tokens: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float)
    webhook_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    response_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    stop_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cache_creation_input_tokens: Mapped[int] = mapped_column(Integer)
    cache_read_input_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)
    cached: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    # How many answers were 429 (rate limited) and 529 (overloaded), across attempts.
    times_rate_limited: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    times_overloaded: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
