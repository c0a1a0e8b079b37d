"""Reading the schema revision with the bare driver, as a worker does when it starts."""

from __future__ import annotations

import pytest

from core.db import database_engine, migrate
from core.schema_revision import SCHEMA_REVISION, stored_revision
from core.settings import ConfigError
from tests.conftest import _free_port
from tests.test_batch_store import alembic


def test_the_revision_is_read_at_every_step_of_the_migrations(blank_database_url):
    assert stored_revision(blank_database_url) is None
    engine = database_engine(blank_database_url)
    alembic(engine, "upgrade", "0001")
    assert stored_revision(blank_database_url) == "0001"
    migrate(engine)
    assert stored_revision(blank_database_url) == SCHEMA_REVISION
    engine.dispose()


def test_an_unreachable_postgresql_is_named_with_its_password_hidden():
    port = _free_port()  # nothing listens there
    url = f"postgresql+psycopg://skyline:hunter2secret@127.0.0.1:{port}/skyline"

    with pytest.raises(ConfigError) as raised:
        stored_revision(url)

    message = str(raised.value)
    assert message.startswith(
        f"cannot reach the database at postgresql+psycopg://skyline:***@127.0.0.1:{port}/skyline: "
    )
    assert message.endswith("(check DATABASE_URL)")
    assert "hunter2secret" not in message


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not a database, " * 100)

    with pytest.raises(
        ConfigError, match=f"cannot read the SQLite database {path}: file is not a database"
    ):
        stored_revision(f"sqlite:///{path}")


def test_an_unsupported_database_is_refused():
    with pytest.raises(ConfigError, match="unsupported database URL scheme 'mysql'"):
        stored_revision("mysql://root@127.0.0.1/skyline")
