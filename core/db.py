"""Engines, sessions and migrations for Skyline's SQL store."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.schema_revision import VERSION_TABLE

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


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates "%", so a path holding one must double it.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def migrate(engine: Engine) -> list[str]:
    """Upgrade to the newest revision; returns the revisions applied, oldest first (none
    when the database was current), for the caller to report."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several hosts may start at once; one migrates, the others wait and find head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        before = _revision(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = _revision(connection)
    if after == before:
        return []
    applied = ScriptDirectory.from_config(config).iterate_revisions(after, before)
    return [script.revision for script in reversed(list(applied))]


def _revision(connection: Connection) -> str | None:
    """The database's revision, or None before the first migration (no version table)."""
    from alembic.runtime.migration import MigrationContext

    options = {"version_table": VERSION_TABLE}
    return MigrationContext.configure(connection, opts=options).get_current_revision()


def delete_in_chunks(
    delete_chunk: Callable[[], int], chunk: int, progress: Callable[[int], None] | None
) -> int:
    """Call ``delete_chunk`` (one short transaction deleting at most ``chunk`` rows) until
    a chunk comes back short, telling ``progress`` each count; returns the total. A prune
    of millions holds no lock for long (SQLite's whole-database one above all)."""
    total = 0
    while deleted := delete_chunk():
        total += deleted
        if progress is not None:
            progress(deleted)
        if deleted < chunk:
            break
    return total


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
