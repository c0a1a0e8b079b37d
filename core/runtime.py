"""What a command needs, opened once from the settings: dispatcher, Redis, SQL store.

The SQL side (SQLAlchemy, the models) is imported on first use: a worker process that runs
no failing job and no batch never loads it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from core.connections import redact
from core.dispatcher import Dispatcher
from core.queue import RedisQueue
from core.schema_revision import schema_is_current
from core.settings import ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from core.failed import FailedJobRepository


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._schema_checked = False

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.settings)

    def queue(self, connection: str | None = None) -> RedisQueue:
        return self.dispatcher.queue(connection)

    @property
    def engine(self) -> Engine:
        return self.dispatcher.engine

    @cached_property
    def failed_store(self) -> FailedJobRepository:
        from core.failed import FailedJobRepository

        self.ensure_schema()
        return FailedJobRepository(self.engine)

    def ensure_schema(self) -> None:
        """Migrate the embedded SQLite store; ask for ``skyline migrate`` elsewhere.

        Checked once per runtime: each check opens a connection of its own, outside the pool.
        """
        if self._schema_checked or schema_is_current(self.settings.sql_url()):
            self._schema_checked = True
            return
        if self.settings.database_url is not None:
            raise ConfigError(
                f"the database at {redact(self.settings.database_url)} is not migrated to this "
                "version of Skyline: run `skyline migrate`"
            )
        from core.db import migrate

        migrate(self.engine)
        self._schema_checked = True
