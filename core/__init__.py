"""Skyline's queue: define, dispatch and run jobs."""

from core.context import current_job
from core.dispatcher import Dispatcher, get_dispatcher, set_dispatcher
from core.job import Job, JobOptions, PreparedJob, job
from core.serialization import use_model_session


def dispatch_bulk(jobs: list) -> list[str | None]:
    """Push many jobs in one round trip per connection.

    Accepts prepared jobs (``send_welcome.prepare(1)``) and ``Job`` instances.
    """
    prepared = [j.prepare() if isinstance(j, Job) else j for j in jobs]
    return get_dispatcher().dispatch(prepared)


__all__ = [
    "Dispatcher",
    "Job",
    "JobOptions",
    "PreparedJob",
    "current_job",
    "dispatch_bulk",
    "get_dispatcher",
    "job",
    "set_dispatcher",
    "use_model_session",
]
