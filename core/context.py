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
    counts: bool = True  # False: the attempt is given back, e.g. when middleware held the job


@dataclass(frozen=True)
class Delete:
    pass


@dataclass(frozen=True)
class Fail:
    reason: str | BaseException


Decision = Release | Delete | Fail


@dataclass(frozen=True)
class Services:
    """What middleware and workflows need from the worker."""

    redis: Any
    keys: Any
    workflows: Any = None


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
        self.body: dict[str, Any] = {}
        self.chain: list[dict] | None = None

    @property
    def batch(self) -> Any:
        """The batch this job belongs to (read now), or None."""
        from core.batches import find_batch

        ref = self.body.get("batch")
        if not ref or self.services is None or self.services.workflows is None:
            return None
        return find_batch(ref["id"], self.services.workflows)

    def prepend_to_chain(self, job: Any) -> None:
        """Run ``job`` right after this one, before the rest of the chain."""
        self._chain_links().insert(0, self._link(job))

    def append_to_chain(self, job: Any) -> None:
        self._chain_links().append(self._link(job))

    def _chain_links(self) -> list[dict]:
        if self.chain is None:
            self.chain = list(self.body.get("chain") or [])
        return self.chain

    def _link(self, job: Any) -> dict:
        from core.specs import link_spec

        if self.services is None or self.services.workflows is None:
            raise RuntimeError("chains can only be changed by a job a worker runs")
        return link_spec(job, self.services.workflows.dispatcher, {"queue": self.queue})

    def release(self, delay_s: float = 0, *, counts: bool = True) -> None:
        """Put the job back on its queue after ``delay_s``, once the handler returns."""
        self.decision = Release(delay_s, counts)

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
