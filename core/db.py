"""Engines, sessions and migrations for Skyline's SQL store."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed number: PostgreSQL advisory locks are keyed by a bigint.
MIGRATION_LOCK_ID = 0x5C71_1E


def database_engine(url: str) -> Engine:
    url = _with_psycopg(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, pool_pre_ping=True, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def _with_psycopg(url: str) -> str:
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Several worker processes write one SQLite file: WAL lets readers run beside
    the writer, and the busy timeout makes a writer wait its turn instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def migrate(engine: Engine) -> None:
    config = Config()
    # ConfigParser interpolates "%", so a path holding one must double it.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several hosts may start at once; one migrates, the others wait and find head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def schema_is_current(engine: Engine) -> bool:
    """True when the database is migrated to the newest revision this code knows."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": "skyline_alembic_version"}
        )
        return context.get_current_revision() == head
