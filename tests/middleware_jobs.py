"""Jobs that use middleware; workers import this module with ``--app tests.middleware_jobs``."""

from __future__ import annotations

import os
import signal
import time

from core import Job, current_job, job
from core.middleware import RateLimited, Skip, ThrottlesExceptions, WithoutOverlapping, limiter
from tests.jobs import record

RATE_PER_S = 5
LOCK_TTL_S = 2.0
HELD_BACK_RETRY_S = 0.05
THROTTLE_LIMIT = 2
THROTTLE_DECAY_S = 1.5
THROTTLE_BACKOFF_S = 0.3

limiter("test-burst", per_second=RATE_PER_S)
limiter("test-counted", per_second=2)
limiter("test-per-user", per_minute=2, by=lambda job: str(job.kwargs["user_id"]))


@job(middleware=[RateLimited("test-burst")])
def limited(n: int) -> None:
    record("limited", n=n, attempt=current_job().attempts)


@job(tries=0, middleware=[RateLimited("test-counted", count_attempt=True)])
def limited_counted(n: int) -> None:
    record("limited_counted", n=n, attempt=current_job().attempts)


@job(middleware=[RateLimited("test-per-user").dont_release()])
def per_user(n: int, user_id: int) -> None:
    record("per_user", n=n, user_id=user_id)


class Exclusive(Job):
    """Holds its key's lock for ``seconds``; records when it starts and ends."""

    timeout = 0

    def __init__(self, key: str, n: int, seconds: float = 0.3) -> None:
        self.key = key
        self.n = n
        self.seconds = seconds

    def middleware(self) -> list:
        return [WithoutOverlapping(self.key).release_after(HELD_BACK_RETRY_S)]

    def handle(self) -> None:
        record("exclusive_start", key=self.key, n=self.n, attempt=self.attempts)
        time.sleep(self.seconds)
        record("exclusive_end", key=self.key, n=self.n)


@job(middleware=[WithoutOverlapping("busy").shared().dont_release()])
def drops_when_busy(n: int) -> None:
    record("drops_when_busy", n=n)


@job(
    tries=0,
    middleware=[
        WithoutOverlapping(lambda job: job.kwargs["key"])
        .release_after(HELD_BACK_RETRY_S)
        .expire_after(LOCK_TTL_S)
    ],
)
def guarded(key: str, n: int, die: bool = False) -> None:
    """With ``die``, kills its worker on the first attempt, leaving the lock behind."""
    attempt = current_job().attempts
    record("guarded", key=key, n=n, attempt=attempt)
    if die and attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)


@job(
    tries=0,
    middleware=[ThrottlesExceptions(THROTTLE_LIMIT, THROTTLE_DECAY_S).backoff(THROTTLE_BACKOFF_S)],
)
def flaky(n: int, failures: int) -> None:
    attempt = current_job().attempts
    record("flaky", n=n, attempt=attempt)
    if attempt <= failures:
        raise ConnectionError(f"flaky {n} attempt {attempt}")


ERRORS = {"value": ValueError, "connection": ConnectionError}


@job(tries=2, middleware=[ThrottlesExceptions(1, 60).by_exception(ConnectionError)])
def picky(n: int, error: str) -> None:
    record("picky", n=n)
    raise ERRORS[error](f"picky {n}")


@job(middleware=[Skip.when(lambda job: job.kwargs["n"] % 2 == 0)])
def skip_even(n: int) -> None:
    record("skip_even", n=n)


@job(middleware=[Skip.unless(lambda job: job.kwargs["n"] % 2 == 0)])
def only_even(n: int) -> None:
    record("only_even", n=n)


@job(middleware=[Skip.when(True)])
def never(n: int) -> None:
    record("never", n=n)


class Newsletter(Job):
    def __init__(self, n: int, enabled: bool) -> None:
        self.n = n
        self.enabled = enabled

    def middleware(self) -> list:
        return [Skip.unless(lambda job: job.instance.enabled)]

    def handle(self) -> None:
        record("newsletter", n=self.n)
