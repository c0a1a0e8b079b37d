"""Alembic environment: migrates the connection that `core.db.migrate` passes in."""

from alembic import context

from core.db import VERSION_TABLE
from core.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Skyline migrations run through core.db.migrate(engine), not the alembic CLI"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
