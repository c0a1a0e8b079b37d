"""What a command needs, opened once from the settings: dispatcher, Redis, SQL store."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine

from core.connections import redact
from core.db import database_engine, migrate, schema_is_current
from core.dispatcher import Dispatcher
from core.failed import FailedJobRepository
from core.queue import RedisQueue
from core.settings import ConfigError, Settings


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.settings, self.engine)

    def queue(self, connection: str | None = None) -> RedisQueue:
        return self.dispatcher.queue(connection)

    @cached_property
    def engine(self) -> Engine:
        return database_engine(self.settings.sql_url())

    @cached_property
    def failed_store(self) -> FailedJobRepository:
        self.ensure_schema()
        return FailedJobRepository(self.engine)

    def ensure_schema(self) -> None:
        """Migrate the embedded SQLite store; ask for ``skyline migrate`` elsewhere."""
        if schema_is_current(self.engine):
            return
        if self.settings.database_url is None:
            migrate(self.engine)
        else:
            raise ConfigError(
                f"the database at {redact(self.settings.database_url)} is not migrated to this "
                "version of Skyline: run `skyline migrate`"
            )
