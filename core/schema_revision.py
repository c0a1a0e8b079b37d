"""The SQL store's schema revision, read with the bare database driver.

Every worker checks its SQL store when it starts, but most never write to it: only a job
that fails for good, or a batch that moves, does. Reading the revision without SQLAlchemy
keeps SQLAlchemy, its ORM and Skyline's models (about 20 MB and a fifth of a second per
process) out of the workers that never need them; they load on first use.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from core.connections import redact
from core.settings import ConfigError

# The newest migration; checked against Alembic's head by the tests.
SCHEMA_REVISION = "0006"
VERSION_TABLE = "skyline_alembic_version"
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")
CONNECT_TIMEOUT_S = 10


def schema_is_current(url: str) -> bool:
    """True when the database is migrated to the newest revision this code knows."""
    return stored_revision(url) == SCHEMA_REVISION


def stored_revision(url: str) -> str | None:
    """The database's revision; None before its first migration.

    Raises ConfigError when the database cannot be reached or its URL is not one Skyline
    supports.
    """
    scheme = url.partition(":")[0].lower()
    if scheme in SQLITE_SCHEMES:
        return _sqlite_revision(url)
    if scheme in POSTGRES_SCHEMES:
        return _postgres_revision(url)
    raise ConfigError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST/DATABASE"
    )


def _sqlite_revision(url: str) -> str | None:
    import sqlite3

    path = Path(unquote(urlsplit(url).path[1:]))
    if not path.is_file():
        return None  # the first migration creates it
    try:
        connection = sqlite3.connect(path)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the SQLite database {path}: {exc}") from None
    try:
        row = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):
            return None
        raise ConfigError(f"cannot read the SQLite database {path}: {exc}") from None
    finally:
        connection.close()
    return row[0] if row else None


def _postgres_revision(url: str) -> str | None:
    import psycopg

    libpq_url = "postgresql" + url[url.index(":") :]
    try:
        connection = psycopg.connect(libpq_url, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise ConfigError(
            f"cannot reach the database at {redact(url)}: {exc} (check DATABASE_URL)"
        ) from None
    try:
        row = connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.Error as exc:
        raise ConfigError(f"cannot read the database at {redact(url)}: {exc}") from None
    finally:
        connection.close()
    return row[0] if row else None
