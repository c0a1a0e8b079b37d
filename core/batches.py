"""Batches as the user sees them: ``batch([...]).then(...).dispatch()`` and ``find_batch(id)``."""

from __future__ import annotations

from typing import Any

from core.batch_store import BatchRecord
from core.context import JobContext
from core.middleware import Middleware
from core.workflows import Workflows

Callback = Any  # a FunctionJob, a PreparedJob or a Job instance


class Batch:
    """A batch's state when it was read, and the actions on it; ``fresh()`` reads it again."""

    def __init__(self, record: BatchRecord, workflows: Workflows) -> None:
        self._record = record
        self._workflows = workflows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._record, name)

    def __repr__(self) -> str:
        r = self._record
        return f"<Batch {r.id} {r.name!r} {r.processed_jobs}/{r.total_jobs} failed={r.failed_jobs}>"

    @property
    def failed_job_ids(self) -> list[str]:
        return self._workflows.batches.failed_job_ids(self._record.id)

    def fresh(self) -> Batch:
        return find_batch(self._record.id, self._workflows) or self

    def cancel(self) -> None:
        self._record = self._workflows.batches.cancel(self._record.id)

    def add(self, jobs: list[Any]) -> None:
        """Add jobs (or chains, as lists) to this batch, typically from one of its jobs."""
        from core.specs import item_spec

        dispatcher = self._workflows.dispatcher
        items = [item_spec(job, dispatcher, {}) for job in jobs]
        self._record = self._workflows.add_to_batch(self._record.id, items)


class PendingBatch:
    def __init__(self, jobs: list[Any]) -> None:
        self.jobs = list(jobs)
        self._name = ""
        self._callbacks: dict[str, Callback] = {}
        self._allow_failures = False
        self._defaults: dict[str, str] = {}

    def then(self, callback: Callback) -> PendingBatch:
        """Dispatched once, with ``batch_id=``, when every job succeeded."""
        self._callbacks["then"] = callback
        return self

    def catch(self, callback: Callback) -> PendingBatch:
        """Dispatched once, with ``batch_id=`` and ``error=``, at the first failure."""
        self._callbacks["catch"] = callback
        return self

    def finally_(self, callback: Callback) -> PendingBatch:
        """Dispatched once, with ``batch_id=``, when every job has succeeded or failed."""
        self._callbacks["finally"] = callback
        return self

    def name(self, name: str) -> PendingBatch:
        self._name = name
        return self

    def allow_failures(self, allow: bool = True) -> PendingBatch:
        self._allow_failures = allow
        return self

    def on_queue(self, queue: str) -> PendingBatch:
        self._defaults["queue"] = queue
        return self

    def on_connection(self, connection: str) -> PendingBatch:
        self._defaults["connection"] = connection
        return self

    def spec(self, dispatcher: Any) -> dict:
        from core.specs import callback_body, item_spec

        options: dict[str, Any] = {"allow_failures": self._allow_failures}
        for name, callback in self._callbacks.items():
            options[name] = callback_body(callback, dispatcher, self._defaults)
        items = [item_spec(job, dispatcher, self._defaults) for job in self.jobs]
        return {"name": self._name, "items": items, "options": options}

    def dispatch(self) -> Batch:
        from core.dispatcher import get_dispatcher

        return get_dispatcher().dispatch_batch(self)


def batch(jobs: list[Any]) -> PendingBatch:
    """Jobs that run in parallel and are tracked together; a list inside is a chain."""
    return PendingBatch(jobs)


def find_batch(batch_id: str, workflows: Workflows | None = None) -> Batch | None:
    if workflows is None:
        from core.dispatcher import get_dispatcher

        workflows = get_dispatcher().workflows
    record = workflows.batches.get(batch_id)
    return Batch(record, workflows) if record else None


class SkipIfBatchCancelled(Middleware):
    """Jobs of a cancelled batch are deleted without running (they still count as done)."""

    def before(self, job: JobContext) -> bool:
        found = job.batch
        if found is not None and found.cancelled:
            job.delete()
            return False
        return True
