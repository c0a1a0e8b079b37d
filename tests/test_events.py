"""Lifecycle events, observed by listeners in the process that runs the worker."""

from __future__ import annotations

import pytest

import core.events as event_types
from core.events import events
from core.execution import WorkerDefaults
from core.registry import registry
from core.worker import Worker, WorkerOptions
from tests import jobs

EVENT_TYPES = [
    event_types.JobPushed,
    event_types.JobProcessing,
    event_types.JobProcessed,
    event_types.JobExceptionOccurred,
    event_types.JobReleased,
    event_types.JobFailed,
    event_types.WorkerLooping,
    event_types.WorkerStopping,
]


@pytest.fixture
def heard():
    heard: list[object] = []
    for event_type in EVENT_TYPES:
        events.listen(event_type, heard.append)
    yield heard
    for event_type in EVENT_TYPES:
        events.forget(event_type, heard.append)


def work_until_empty(runtime) -> int:
    options = WorkerOptions(stop_when_empty=True, defaults=WorkerDefaults(backoff=0))
    worker = Worker(
        runtime.queue(),
        lambda: runtime.failed_store,
        registry,
        runtime.settings.signing_keys(),
        options,
    )
    return worker.run(handle_signals=False)


def names(heard: list[object], event_type: type) -> list[str]:
    return [e.job_name for e in heard if isinstance(e, event_type)]


def test_a_job_that_succeeds_is_pushed_processing_and_processed(runtime, heard):
    jobs.noop.dispatch(1)

    assert work_until_empty(runtime) == 0

    assert names(heard, event_types.JobPushed) == ["tests.jobs.noop"]
    assert names(heard, event_types.JobProcessing) == ["tests.jobs.noop"]
    [processed] = [e for e in heard if isinstance(e, event_types.JobProcessed)]
    assert processed.runtime_s >= 0
    assert any(isinstance(e, event_types.WorkerLooping) for e in heard)
    assert isinstance(heard[-1], event_types.WorkerStopping)
    assert heard[-1].status == 0


def test_a_job_that_fails_reports_exceptions_releases_and_failure(runtime, heard):
    jobs.always_fails.options(tries=2).dispatch(1)

    work_until_empty(runtime)

    exceptions = [e for e in heard if isinstance(e, event_types.JobExceptionOccurred)]
    assert [str(e.exception) for e in exceptions] == ["always fails 1"] * 2
    assert names(heard, event_types.JobReleased) == ["tests.jobs.always_fails"]
    assert names(heard, event_types.JobFailed) == ["tests.jobs.always_fails"]
    assert names(heard, event_types.JobProcessed) == []


def test_a_listener_that_raises_does_not_break_the_job(runtime, heard, record_dir, monkeypatch):
    monkeypatch.setenv("SKYLINE_TEST_RECORD_DIR", str(record_dir))

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    events.listen(event_types.JobProcessing, broken)
    try:
        jobs.noop.dispatch(1)
        work_until_empty(runtime)
    finally:
        events.forget(event_types.JobProcessing, broken)

    assert names(heard, event_types.JobProcessed) == ["tests.jobs.noop"]
    assert len(jobs.runs(record_dir, "noop")) == 1
