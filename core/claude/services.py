"""What Claude requests need from the process: settings, the SQL store, Redis, the dispatcher.

Code that has them at hand (the dashboard's lifespan, a test) builds ``ClaudeServices``
itself; a job in a worker, or an application calling ``submit``, takes the process's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Engine

from core.claude.cache import ResponseCache
from core.claude.records import ClaudeRequestRepository
from core.claude.settings import ClaudeSettings
from core.db import database_engine
from core.dispatcher import Dispatcher, get_dispatcher


@dataclass(frozen=True)
class ClaudeServices:
    dispatcher: Dispatcher
    engine: Engine

    @property
    def claude(self) -> ClaudeSettings:
        return self.dispatcher.settings.claude

    @functools.cached_property
    def requests(self) -> ClaudeRequestRepository:
        return ClaudeRequestRepository(self.engine)

    @functools.cached_property
    def cache(self) -> ResponseCache:
        """On the default connection's Redis, which every worker shares."""
        return ResponseCache(self.dispatcher.queue().client, self.dispatcher.keys, self.claude)


def default_services() -> ClaudeServices:
    dispatcher = get_dispatcher()
    return ClaudeServices(dispatcher, _engine(dispatcher.settings.sql_url()))


@functools.cache
def _engine(url: str) -> Engine:
    """One engine (one connection pool) per database for the whole process."""
    return database_engine(url)
