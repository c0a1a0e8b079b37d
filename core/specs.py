"""Turning what users write (jobs, lists, chains, batches) into the bodies workflows carry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.dispatcher import make_body
from core.job import FunctionJob, Job, PreparedJob

if TYPE_CHECKING:
    from core.dispatcher import Dispatcher


def prepared(job: Any) -> PreparedJob:
    if isinstance(job, PreparedJob):
        return job
    if isinstance(job, Job):
        return job.prepare()
    if isinstance(job, FunctionJob):
        return job.prepare()
    raise TypeError(f"expected a job (prepared, a Job instance or a @job function), not {job!r}")


def job_body(job: Any, dispatcher: Dispatcher, defaults: dict[str, str]) -> dict:
    """A job's body; the chain's or batch's queue and connection apply where it sets none."""
    ready = prepared(job)
    overrides = {k: v for k, v in defaults.items() if getattr(ready.options, k) is None}
    options = ready.options.merged(**overrides)
    connection = options.connection or dispatcher.settings.default_connection
    return make_body(PreparedJob(ready.definition, ready.args, ready.kwargs, options), connection)


def callback_body(callback: Any, dispatcher: Dispatcher, defaults: dict[str, str]) -> dict:
    return job_body(callback, dispatcher, defaults)


def link_spec(link: Any, dispatcher: Dispatcher, defaults: dict[str, str]) -> dict:
    from core.batches import PendingBatch

    if isinstance(link, PendingBatch):
        return {"batch": link.spec(dispatcher)}
    return {"job": job_body(link, dispatcher, defaults)}


def item_spec(item: Any, dispatcher: Dispatcher, defaults: dict[str, str]) -> dict:
    from core.chains import PendingChain

    if isinstance(item, list | tuple):
        item = PendingChain(list(item))
    if isinstance(item, PendingChain):
        return {"chain": item.links(dispatcher, defaults)}
    return {"job": job_body(item, dispatcher, defaults)}
