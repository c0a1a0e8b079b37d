"""A queue fake for applications' own tests, like Laravel's ``Queue::fake()``.

with fake_queue() as queue:
    signup(user)
    queue.assert_pushed(send_welcome, lambda job: job.args == [user.id])
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from core.dispatcher import set_dispatcher
from core.job import FunctionJob, Job, PreparedJob, registered_name
from core.payload import new_job_id

JobRef = FunctionJob | type[Job] | str


def _name(job: JobRef) -> str:
    if isinstance(job, str):
        return job
    if isinstance(job, FunctionJob):
        return job.name
    return registered_name(job)


class QueueFake:
    """Records dispatched jobs instead of pushing them."""

    def __init__(self) -> None:
        self.jobs: list[PreparedJob] = []

    def dispatch(self, jobs: list[PreparedJob]) -> list[str | None]:
        self.jobs.extend(jobs)
        return [new_job_id() for _ in jobs]

    def pushed(self, job: JobRef, where: Callable[[PreparedJob], bool] | None = None) -> list:
        name = _name(job)
        return [j for j in self.jobs if j.definition.name == name and (where is None or where(j))]

    def assert_pushed(
        self,
        job: JobRef,
        where: Callable[[PreparedJob], bool] | int | None = None,
    ) -> None:
        if isinstance(where, int):
            count = len(self.pushed(job))
            assert count == where, f"{_name(job)} was pushed {count} times, not {where}"
            return
        assert self.pushed(job, where), f"{_name(job)} was not pushed{self._matching(where)}"

    def assert_pushed_on(
        self, queue: str, job: JobRef, where: Callable[[PreparedJob], bool] | None = None
    ) -> None:
        on_queue = self.pushed(job, lambda j: (j.options.queue or "default") == queue)
        matching = [j for j in on_queue if where is None or where(j)]
        assert matching, f"{_name(job)} was not pushed on {queue!r}{self._matching(where)}"

    def assert_not_pushed(
        self, job: JobRef, where: Callable[[PreparedJob], bool] | None = None
    ) -> None:
        found = self.pushed(job, where)
        assert not found, f"{_name(job)} was pushed {len(found)} times{self._matching(where)}"

    def assert_nothing_pushed(self) -> None:
        names = sorted({j.definition.name for j in self.jobs})
        assert not self.jobs, f"jobs were pushed: {', '.join(names)}"

    def assert_count(self, count: int) -> None:
        assert len(self.jobs) == count, f"{len(self.jobs)} jobs were pushed, not {count}"

    @staticmethod
    def _matching(where: Any) -> str:
        return " matching the condition" if where is not None else ""


@contextlib.contextmanager
def fake_queue() -> Iterator[QueueFake]:
    fake = QueueFake()
    previous = set_dispatcher(fake)  # type: ignore[arg-type]
    try:
        yield fake
    finally:
        set_dispatcher(previous)
