"""Jobs for the workflow tests: chains, batches, unique jobs."""

from __future__ import annotations

import time

from core import Job, current_job, job
from core.batches import SkipIfBatchCancelled
from tests.jobs import record


@job
def step(name: str) -> None:
    record("step", name=name, queue=current_job().queue)


@job(tries=1)
def broken_step(name: str) -> None:
    record("broken_step", name=name)
    raise RuntimeError(f"step {name} broke")


@job
def on_chain_failed(error: str) -> None:
    record("chain_catch", error=error)


@job
def on_then(batch_id: str) -> None:
    record("then", batch_id=batch_id)


@job
def on_catch(batch_id: str, error: str) -> None:
    record("catch", batch_id=batch_id, error=error)


@job
def on_finally(batch_id: str) -> None:
    record("finally", batch_id=batch_id)


class BatchedStep(Job):
    """Checks its batch, like a Laravel job using the batch-cancelled middleware."""

    tries = 1

    def __init__(self, name: str, fail: bool = False, seconds: float = 0) -> None:
        self.name = name
        self.fail = fail
        self.seconds = seconds

    def middleware(self) -> list:
        return [SkipIfBatchCancelled()]

    def handle(self) -> None:
        time.sleep(self.seconds)
        record("batched", name=self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} failed")


@job
def adds_more(count: int) -> None:
    batch = current_job().batch
    batch.add([step.prepare(f"added-{n}") for n in range(count)])
    record("adds_more", count=count)


@job
def grows_its_chain() -> None:
    current_job().prepend_to_chain(step.prepare("prepended"))
    current_job().append_to_chain(step.prepare("appended"))
    record("step", name="grower", queue=current_job().queue)


@job(unique=True, unique_for=3, unique_id=lambda key, seconds=0: key)
def unique_sleeper(key: str, seconds: float = 0) -> None:
    record("unique_start", key=key)
    time.sleep(seconds)
    record("unique_end", key=key)


@job(unique=True, unique_until_processing=True, unique_id=lambda key: key)
def unique_until_start(key: str) -> None:
    record("unique_until_start", key=key)
