"""Lifecycle events, so metrics and the dashboard can listen without the worker knowing them.

Listeners run synchronously in the emitting thread; one that raises is logged
and never breaks the job or the worker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("skyline.events")


@dataclass(frozen=True)
class JobPushed:
    job_id: str
    job_name: str
    queue: str
    connection: str
    delay_s: float


@dataclass(frozen=True)
class JobProcessing:
    job_id: str
    job_name: str
    queue: str
    attempts: int


@dataclass(frozen=True)
class JobProcessed:
    job_id: str
    job_name: str
    queue: str
    runtime_s: float


@dataclass(frozen=True)
class JobExceptionOccurred:
    job_id: str
    job_name: str
    queue: str
    exception: BaseException


@dataclass(frozen=True)
class JobReleased:
    job_id: str
    job_name: str
    queue: str
    delay_s: float


@dataclass(frozen=True)
class JobFailed:
    job_id: str
    job_name: str
    queue: str
    exception: BaseException


@dataclass(frozen=True)
class QueueBusy:
    """``skyline queue monitor`` found a queue above its limit."""

    connection: str
    queue: str
    size: int


@dataclass(frozen=True)
class WorkerLooping:
    queues: tuple[str, ...]


@dataclass(frozen=True)
class WorkerStopping:
    status: int


E = TypeVar("E")


class Events:
    def __init__(self) -> None:
        self._listeners: dict[type, list[Callable[[Any], None]]] = defaultdict(list)

    def listen(self, event_type: type[E], listener: Callable[[E], None]) -> None:
        self._listeners[event_type].append(listener)

    def forget(self, event_type: type[E], listener: Callable[[E], None]) -> None:
        self._listeners[event_type].remove(listener)

    def wants(self, event_type: type) -> bool:
        """Lets hot paths skip building an event nobody listens to."""
        return bool(self._listeners.get(event_type))

    def emit(self, event: object) -> None:
        for listener in self._listeners.get(type(event), ()):
            try:
                listener(event)
            except Exception:
                log.exception("listener %r failed on %s", listener, type(event).__name__)


events = Events()
