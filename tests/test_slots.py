"""Slots: async jobs started together reach the event loop in one hand-over, when the
block that starts them ends; a job started on its own reaches it at once. Async jobs that
end in one turn of the loop are finished together, after the last of them has ended."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.execution import Outcome, Result
from core.slots import Slots
from tests.conftest import wait_until

DEADLINE_S = 5.0


class Jobs:
    """Async jobs that note when they begin and when they are finished."""

    def __init__(self) -> None:
        self.begun: list[int] = []
        self.finished: list[int] = []
        self.steps: list[str] = []  # "ended N" and "finished N", in the order they happened
        self._lock = threading.Lock()

    def start(self, slots: Slots, n: int) -> None:
        async def job() -> Outcome:
            self.begun.append(n)
            self.steps.append(f"ended {n}")
            return Outcome(Result.COMPLETED)

        def finish(outcome: Outcome) -> None:
            with self._lock:
                self.finished.append(n)
                self.steps.append(f"finished {n}")
            slots.give_back()

        taken = slots.take(0)  # every free slot: keep one, as the worker would
        assert taken >= 1
        slots.give_back(taken - 1)
        slots.run_async(job, finish, lambda outcome: True)

    def wait_finished(self, count: int) -> None:
        wait_until(
            lambda: len(self.finished) >= count,
            DEADLINE_S,
            interval_s=0.005,
            message=f"fewer than {count} jobs finished",
        )


def loop_turn(slots: Slots) -> None:
    """Return once the loop has run everything handed to it before this call."""

    async def nothing() -> None:
        return None

    asyncio.run_coroutine_threadsafe(nothing(), slots._loop).result(DEADLINE_S)


@pytest.fixture
def slots():
    slots = Slots(4)
    yield slots
    slots.drain()


def test_jobs_started_together_reach_the_loop_only_when_the_block_ends(slots):
    jobs = Jobs()

    with slots.starting_together():
        for n in range(3):
            jobs.start(slots, n)
        loop_turn(slots)
        assert jobs.begun == []

    jobs.wait_finished(3)
    assert sorted(jobs.begun) == sorted(jobs.finished) == [0, 1, 2]


def test_a_job_started_on_its_own_reaches_the_loop_at_once(slots):
    jobs = Jobs()

    jobs.start(slots, 0)
    loop_turn(slots)

    assert jobs.begun == [0]
    jobs.wait_finished(1)


def test_jobs_started_before_an_error_in_the_block_still_run(slots):
    jobs = Jobs()

    with pytest.raises(RuntimeError), slots.starting_together():
        jobs.start(slots, 0)
        raise RuntimeError("the next payload could not be opened")

    jobs.wait_finished(1)
    assert jobs.begun == [0]


def test_jobs_that_end_in_one_turn_of_the_loop_are_finished_together(slots):
    jobs = Jobs()

    with slots.starting_together():
        for n in range(3):
            jobs.start(slots, n)

    jobs.wait_finished(3)
    assert jobs.steps == [f"ended {n}" for n in range(3)] + [f"finished {n}" for n in range(3)]
