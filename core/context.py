"""The running job's handle, so a job can release, delete or fail itself.

A context variable, because one worker process may run many jobs at once in
threads or tasks.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Release:
    delay_s: float


@dataclass(frozen=True)
class Delete:
    pass


@dataclass(frozen=True)
class Fail:
    reason: str | BaseException


Decision = Release | Delete | Fail


@dataclass(frozen=True)
class Services:
    """What middleware and workflows need from the worker: its Redis and key builder."""

    redis: Any
    keys: Any


class JobContext:
    def __init__(self, job_id: str, job_name: str, queue: str, attempts: int) -> None:
        self.job_id = job_id
        self.job_name = job_name
        self.queue = queue
        self.attempts = attempts
        self.decision: Decision | None = None
        self.instance: Any = None
        self.args: list[Any] = []
        self.kwargs: dict[str, Any] = {}
        self.services: Services | None = None

    def release(self, delay_s: float = 0) -> None:
        """Put the job back on its queue after ``delay_s``, once the handler returns."""
        self.decision = Release(delay_s)

    def delete(self) -> None:
        self.decision = Delete()

    def fail(self, reason: str | BaseException = "failed by the job") -> None:
        self.decision = Fail(reason)


_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("skyline_job")


def current_job() -> JobContext:
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("current_job() is only available while a worker runs a job") from None


def enter(context: JobContext) -> contextvars.Token:
    return _current.set(context)


def leave(token: contextvars.Token) -> None:
    _current.reset(token)
