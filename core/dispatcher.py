"""Turning prepared jobs into signed payloads on their connections."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from functools import cached_property
from typing import TYPE_CHECKING, Any

from core.connections import connect
from core.events import JobPushed, events
from core.job import Delay, PreparedJob
from core.keys import Keys
from core.locks import Locks
from core.payload import build, new_job_id, now_ms
from core.queue import PushPart, RedisQueue
from core.recording import Recorder
from core.records import PushedJob
from core.serialization import encode, model_tags
from core.settings import Settings, load_settings
from core.transactions import after_commit

Pushable = tuple[dict[str, Any], float]  # a payload body and its delay in seconds

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from core.batches import Batch, PendingBatch
    from core.chains import PendingChain
    from core.workflows import Workflows

PUSH_PART = 1000  # jobs: in a bulk push, the first part can be reserved while the rest go in
BODY_OPTIONS = (
    "tries",
    "max_exceptions",
    "backoff",
    "timeout",
    "fail_on_timeout",
    "delete_when_missing_models",
)


def delay_seconds(delay: Delay | None, now: float | None = None) -> float:
    """Seconds from now for a delay given as seconds, a timedelta or a datetime."""
    if delay is None:
        return 0.0
    if isinstance(delay, dt.timedelta):
        return max(delay.total_seconds(), 0.0)
    if isinstance(delay, dt.datetime):
        moment = delay if delay.tzinfo else delay.astimezone()
        return max(moment.timestamp() - (now if now is not None else time.time()), 0.0)
    if isinstance(delay, int | float) and not isinstance(delay, bool):
        return max(float(delay), 0.0)
    raise TypeError(f"a delay is seconds, a timedelta or a datetime, not {delay!r}")


def make_body(job: PreparedJob, connection: str, *, job_id: str | None = None) -> dict[str, Any]:
    options = job.options
    body_options = {name: getattr(options, name) for name in BODY_OPTIONS}
    if options.retry_until is not None:
        body_options["retry_until"] = now_ms() + int(delay_seconds(options.retry_until) * 1000)
    args, kwargs = encode(job.args), encode(job.kwargs)
    return {
        "id": job_id or new_job_id(),
        "job": job.definition.name,
        "queue": options.queue or "default",
        "connection": connection,
        "args": args,
        "kwargs": kwargs,
        "options": {k: v for k, v in body_options.items() if v is not None},
        "tags": job_tags(job, [args, kwargs]),
        "pushed_at": now_ms(),
    }


def job_tags(job: PreparedJob, encoded_arguments: list[Any]) -> list[str]:
    """The job's own tags (option or ``tags()``), then one per model in its arguments."""
    own = [*(job.options.tags or ()), *job.definition.tags_for(job.args, job.kwargs)]
    return list(dict.fromkeys([*own, *model_tags(encoded_arguments)]))


class Dispatcher:
    """Pushes jobs on the connections the settings declare."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self._queues: dict[str, RedisQueue] = {}
        self._recorders: dict[str, Recorder] = {}

    def queue(self, connection: str | None = None) -> RedisQueue:
        name = connection or self.settings.default_connection
        if name not in self._queues:
            self._queues[name] = RedisQueue(connect(self.settings, name), self.keys)
        return self._queues[name]

    def recorder(self, connection: str | None = None) -> Recorder | None:
        """What records jobs on the connection's Redis; None when recording is off."""
        if not self.settings.records.enabled:
            return None
        name = connection or self.settings.default_connection
        if name not in self._recorders:
            client = self.queue(name).client
            self._recorders[name] = Recorder.open(client, self.keys, self.settings.records)
        return self._recorders[name]

    @cached_property
    def engine(self) -> Engine:
        """The SQL store, opened on first use: pushing jobs needs none of it."""
        from core.db import database_engine

        return database_engine(self.settings.sql_url())

    @cached_property
    def workflows(self) -> Workflows:
        from core.workflows import Workflows

        return Workflows(self)

    def dispatch_chain(self, chain: PendingChain) -> None:
        self.workflows.start_chain(chain.links(self), chain.catch_body(self))

    def dispatch_batch(self, pending: PendingBatch) -> Batch:
        from core.batches import Batch

        record = self.workflows.start_batch(pending.spec(self))
        return Batch(record, self.workflows)

    def dispatch(self, jobs: list[PreparedJob]) -> list[str | None]:
        """Push jobs; many jobs go out in one round trip per connection.

        A unique job whose lock is held is not pushed: its id comes back as None.
        Jobs dispatched ``after_commit`` inside an open SQLAlchemy transaction wait for it.
        """
        now_items: list[Pushable] = []
        later_items: list[Pushable] = []
        ids: list[str | None] = []
        for job in jobs:
            connection = job.options.connection or self.settings.default_connection
            body = make_body(job, connection)
            if job.definition.unique_for is not None and not self._lock_unique(job, body):
                ids.append(None)
                continue
            ids.append(body["id"])
            waits = job.options.after_commit
            if waits is None:
                waits = self.settings.connection(connection).after_commit
            item = (body, delay_seconds(job.options.delay))
            (later_items if waits else now_items).append(item)
        if later_items and not after_commit(lambda: self.push_bodies(later_items)):
            now_items += later_items
        self.push_bodies(now_items)
        return ids

    @cached_property
    def signing_key(self) -> str:
        """Read once: the embedded default keeps its secret in a file."""
        return self.settings.signing_keys()[0]

    def push_bodies(self, items: list[Pushable]) -> None:
        """Sign and push ready-made bodies (the workflows' next links and callbacks)."""
        signing_key = self.signing_key
        groups: dict[str, list[Pushable]] = defaultdict(list)
        for body, delay_s in items:
            groups[body["connection"]].append((body, delay_s))
        for connection, bodies in groups.items():
            if self.settings.connection(connection).driver == "sync":
                from core.inline import run_inline

                for body, _ in bodies:
                    run_inline(build(body, signing_key, available_at=now_ms()), self.settings)
            else:
                self.push_signed(connection, bodies, signing_key)

    def _lock_unique(self, job: PreparedJob, body: dict[str, Any]) -> bool:
        """Take the unique lock for ``job``; its key travels in the body so workers free it."""
        unique_id = job.definition.unique_id_for(job.args, job.kwargs)
        key = self.keys.unique_lock(job.definition.name, unique_id)
        locks = Locks(self.queue(body["connection"]).client)
        if not locks.acquire(key, body["id"], job.definition.unique_for or None):
            return False
        body["unique"] = {"key": key, "until_processing": job.definition.unique_until_processing}
        return True

    def push_signed(self, connection: str, bodies: list[Pushable], key: str) -> None:
        """Sign bodies with ``key`` and push them onto the connection's Redis, recorded."""
        recorder = self.recorder(connection)
        now = now_ms()
        parts = [
            _part(bodies[first : first + PUSH_PART], key, now, recorder)
            for first in range(0, len(bodies), PUSH_PART)
        ]
        self.queue(connection).push_parts(parts)
        if events.wants(JobPushed):
            for body, delay_s in bodies:
                events.emit(JobPushed(body["id"], body["job"], body["queue"], connection, delay_s))


def _part(bodies: list[Pushable], key: str, now: int, recorder: Recorder | None) -> PushPart:
    ready: dict[str, list[str]] = defaultdict(list)
    later: dict[str, list[tuple[int, str]]] = defaultdict(list)
    pushed: list[PushedJob] = []
    for body, delay_s in bodies:
        available_at = now + int(delay_s * 1000)
        raw = build(body, key, available_at=available_at)
        if delay_s > 0:
            later[body["queue"]].append((available_at, raw))
        else:
            ready[body["queue"]].append(raw)
        if recorder is not None:
            pushed.append(PushedJob(body, raw, available_at))
    return ready, later, recorder.pushed(pushed) if recorder else None


_default: Dispatcher | None = None


def get_dispatcher() -> Dispatcher:
    """The process's dispatcher, built from the settings on first use."""
    global _default
    if _default is None:
        _default = Dispatcher(load_settings())
    return _default


def set_dispatcher(dispatcher: Dispatcher | None) -> Dispatcher | None:
    """Swap the process's dispatcher (the queue fake and tests use this); returns the old one."""
    global _default
    previous, _default = _default, dispatcher
    return previous
