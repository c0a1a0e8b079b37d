"""What every view reads from: the repositories, opened once per app."""

from __future__ import annotations

import hashlib
import hmac
from functools import cached_property

import redis
from starlette.requests import Request

from core.batch_store import BatchRepository
from core.control import ControlRepository
from core.failed import FailedJobRepository
from core.keys import Keys
from core.metrics import MetricsRepository
from core.queue import RedisQueue
from core.records import JobRecordRepository
from core.runtime import Runtime
from core.settings import Settings
from core.snapshots import SnapshotRepository
from dashboard.audit import AuditLog
from dashboard.throttle import LoginThrottle
from dashboard.users import TokenRepository, UserRepository


class Dashboard:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @cached_property
    def queue(self) -> RedisQueue:
        return self.runtime.queue()

    @property
    def client(self) -> redis.Redis:
        return self.queue.client

    @property
    def keys(self) -> Keys:
        return self.runtime.dispatcher.keys

    @cached_property
    def records(self) -> JobRecordRepository:
        return JobRecordRepository(self.client, self.keys, self.settings.records)

    @cached_property
    def metrics(self) -> MetricsRepository:
        return MetricsRepository(self.client, self.keys)

    @cached_property
    def control(self) -> ControlRepository:
        return ControlRepository(self.client, self.keys)

    @cached_property
    def failed(self) -> FailedJobRepository:
        return self.runtime.failed_store

    @cached_property
    def batches(self) -> BatchRepository:
        return BatchRepository(self.runtime.engine)

    @cached_property
    def snapshots(self) -> SnapshotRepository:
        return SnapshotRepository(self.runtime.engine)

    @cached_property
    def users(self) -> UserRepository:
        return UserRepository(self.runtime.engine)

    @cached_property
    def tokens(self) -> TokenRepository:
        return TokenRepository(self.runtime.engine)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.runtime.engine)

    @cached_property
    def login_throttle(self) -> LoginThrottle:
        auth = self.settings.dashboard.auth
        return LoginThrottle(self.client, self.keys, auth.login_attempts, auth.login_window_s)

    @cached_property
    def session_secret(self) -> str:
        """Derived from the signing secret, so that a session cookie can never pass as a
        signed payload, nor the other way round."""
        key = self.settings.signing_keys()[0].encode()
        return hmac.new(key, b"skyline dashboard sessions", hashlib.sha256).hexdigest()

    def record(self, request: Request, action: str, target: str, **detail: object) -> None:
        """Write a change made through ``request`` to the audit log."""
        principal = request.state.principal
        address = request.client.host if request.client else None
        self.audit.record(f"{principal.name} ({principal.via})", action, target, detail, address)


def dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard
