import dataclasses

import pytest

from core.dispatcher import make_body
from core.execution import (
    JobTimeoutError,
    MaxAttemptsExceededError,
    Result,
    WorkerDefaults,
    WorkerLostError,
    backoff_delay,
    refuse_before_running,
    retry_after_exception,
)
from core.job import PreparedJob
from core.payload import Payload, build, parse
from tests.jobs import always_fails, kills_its_worker, noop

KEY = "test-secret-0123456789abcdef"
DEFAULTS = WorkerDefaults()
NOW = 1_700_000_000_000
ERROR = ValueError("boom")


def payload(job: PreparedJob, *, attempts: int = 1, exceptions: int = 0, lost: int = 0) -> Payload:
    parsed = parse(build(make_body(job, "redis"), KEY, available_at=0), [KEY])
    return dataclasses.replace(parsed, attempts=attempts, exceptions=exceptions, lost=lost)


def failing(**options) -> PreparedJob:
    return always_fails.options(**options).prepare(1)


@pytest.mark.parametrize(
    ("backoff", "attempt", "expected"),
    [
        (0, 1, 0.0),
        (10, 1, 10.0),
        (10, 9, 10.0),
        ([1, 5], 1, 1.0),
        ([1, 5], 2, 5.0),
        ([1, 5], 3, 5.0),
        ([1, 5, 30], 3, 30.0),
        ([1, 5, 30], 100, 30.0),
        ([7], 1, 7.0),
        ([7], 2, 7.0),
        ([], 1, 0.0),
    ],
)
def test_backoff_delay(backoff, attempt, expected):
    assert backoff_delay(backoff, attempt) == expected


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, 1.0), (2, 5.0), (3, None), (4, None)],
)
def test_retries_until_tries_are_used_with_list_backoff(attempts, expected):
    job = payload(failing(tries=3, backoff=[1, 5]), attempts=attempts)
    assert retry_after_exception(job, ERROR, DEFAULTS, NOW) == expected


@pytest.mark.parametrize(("attempts", "expected"), [(1, 2.0), (999, 2.0), (10_000, 2.0)])
def test_zero_tries_retries_forever(attempts, expected):
    job = payload(failing(tries=0, backoff=2), attempts=attempts)
    assert retry_after_exception(job, ERROR, DEFAULTS, NOW) == expected


@pytest.mark.parametrize(
    ("defaults", "attempts", "expected"),
    [
        (WorkerDefaults(), 1, None),
        (WorkerDefaults(tries=2, backoff=[3, 9]), 1, 3.0),
        (WorkerDefaults(tries=2, backoff=[3, 9]), 2, None),
        (WorkerDefaults(tries=0, backoff=[3, 9]), 50, 9.0),
    ],
)
def test_job_without_options_uses_worker_defaults(defaults, attempts, expected):
    job = payload(noop.prepare(1), attempts=attempts)
    assert retry_after_exception(job, ERROR, defaults, NOW) == expected


def test_job_options_win_over_worker_defaults():
    job = payload(failing(tries=3, backoff=4), attempts=1)
    assert retry_after_exception(job, ERROR, WorkerDefaults(tries=1, backoff=60), NOW) == 4.0


@pytest.mark.parametrize(
    ("tries", "attempts", "exceptions", "expected"),
    [
        (5, 1, 0, 1.0),  # first exception of 2 allowed
        (5, 2, 1, None),  # second exception: max_exceptions reached
        (10, 5, 1, None),  # released attempts do not save it
        (10, 5, 0, 1.0),  # attempts spent on releases are not exceptions
        (3, 3, 0, None),  # tries run out before max_exceptions
        (0, 50, 0, 1.0),  # unlimited tries, still under max_exceptions
        (0, 50, 1, None),
    ],
)
def test_max_exceptions_and_tries_both_limit(tries, attempts, exceptions, expected):
    prepared = failing(tries=tries, max_exceptions=2, backoff=1)
    job = payload(prepared, attempts=attempts, exceptions=exceptions)
    assert retry_after_exception(job, ERROR, DEFAULTS, NOW) == expected


def payload_until(**options) -> tuple[Payload, int]:
    job = payload(failing(retry_until=60, backoff=2, **options), attempts=5)
    return job, job.option("retry_until")


@pytest.mark.parametrize(
    ("offset_ms", "expected"), [(-60_000, 2.0), (-1, 2.0), (0, None), (1, None)]
)
def test_retry_until_replaces_tries(offset_ms, expected):
    job, until = payload_until(tries=1)
    assert retry_after_exception(job, ERROR, DEFAULTS, until + offset_ms) == expected


def test_retry_until_is_stored_as_an_absolute_deadline():
    job = payload(failing(retry_until=60))
    assert 59_000 <= job.option("retry_until") - job.body["pushed_at"] <= 60_000


def test_max_exceptions_still_applies_under_retry_until():
    job, until = payload_until(max_exceptions=3)
    job = dataclasses.replace(job, exceptions=2)
    assert retry_after_exception(job, ERROR, DEFAULTS, until - 1) is None


@pytest.mark.parametrize(
    ("fail_on_timeout", "exc", "expected"),
    [
        (True, JobTimeoutError("late"), None),
        (True, ERROR, 1.0),
        (False, JobTimeoutError("late"), 1.0),
        (None, JobTimeoutError("late"), 1.0),
    ],
)
def test_fail_on_timeout_fails_only_timeouts(fail_on_timeout, exc, expected):
    job = payload(failing(tries=3, backoff=1, fail_on_timeout=fail_on_timeout), attempts=1)
    assert retry_after_exception(job, exc, DEFAULTS, NOW) == expected


@pytest.mark.parametrize(
    ("limit", "lost", "refused"),
    [(3, 0, False), (3, 2, False), (3, 3, True), (3, 4, True), (1, 0, False), (1, 1, True)],
)
def test_worker_lost_limit(limit, lost, refused):
    job = payload(kills_its_worker.prepare(), attempts=lost + 1, lost=lost)
    outcome = refuse_before_running(job, WorkerDefaults(worker_lost_limit=limit), NOW)
    if not refused:
        assert outcome is None
        return
    assert outcome.result is Result.FAILED
    assert isinstance(outcome.exception, WorkerLostError)
    assert f"lost {lost} times" in str(outcome.exception)


@pytest.mark.parametrize(
    ("job", "attempts", "refused"),
    [
        (failing(tries=3), 3, False),
        (failing(tries=3), 4, True),
        (failing(tries=0), 10_000, False),
        (noop.prepare(), 1, False),
        (noop.prepare(), 2, True),
    ],
    ids=["last-try", "past-tries", "unlimited", "default-tries", "past-default-tries"],
)
def test_refuses_attempts_beyond_tries(job, attempts, refused):
    outcome = refuse_before_running(payload(job, attempts=attempts), DEFAULTS, NOW)
    if not refused:
        assert outcome is None
        return
    assert outcome.result is Result.FAILED
    assert isinstance(outcome.exception, MaxAttemptsExceededError)
    assert "attempted too many times (" in str(outcome.exception)


@pytest.mark.parametrize(("offset_ms", "refused"), [(-1, False), (0, False), (1, True)])
def test_refuses_to_start_after_retry_until(offset_ms, refused):
    job, until = payload_until(tries=1)
    outcome = refuse_before_running(job, DEFAULTS, until + offset_ms)
    if not refused:
        assert outcome is None
        return
    assert outcome.result is Result.FAILED
    assert isinstance(outcome.exception, MaxAttemptsExceededError)
    assert "retry_until" in str(outcome.exception)


def test_worker_lost_limit_applies_before_retry_until():
    job, until = payload_until()
    job = dataclasses.replace(job, lost=3)
    outcome = refuse_before_running(job, DEFAULTS, until - 1)
    assert isinstance(outcome.exception, WorkerLostError)
