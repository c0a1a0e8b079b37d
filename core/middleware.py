"""Job middleware: code that runs around a job's ``handle``.

A middleware's ``before`` may hold a job back (release, delete or fail it through
the job context) and ``after`` sees how the job ended; it may turn an exception
into a decision (release for a cool-down, say). Hooks, not wrappers, so the same
middleware serves sync and async jobs.

One middleware instance serves every job that lists it, possibly at the same
time in several slots, so per-job state (a lock's token) is kept per context.
A job held back without running is released without using up one of its tries
(``RateLimited(..., count_attempt=True)`` opts back in): only the job's own
failures should count against it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import redis

from core import limits
from core.limits import limiter
from core.locks import Locks

if TYPE_CHECKING:
    from core.context import JobContext

__all__ = [
    "Middleware",
    "RateLimited",
    "Skip",
    "ThrottlesExceptions",
    "WithoutOverlapping",
    "limiter",
]

log = logging.getLogger("skyline.middleware")

DEFAULT_LOCK_TTL_S = 300.0

Key = str | Callable[["JobContext"], str]


class Middleware:
    def before(self, job: JobContext) -> bool:
        """Return False (after deciding through ``job``) to keep the job from running."""
        return True

    def after(self, job: JobContext, error: BaseException | None) -> None:
        """Called once the job ran, or was held back by a later middleware."""


def _services(job: JobContext) -> Any:
    if job.services is None:
        raise RuntimeError(
            f"{job.job_name} uses Redis-backed middleware but runs without the worker's "
            "Redis (JobContext.services is None)"
        )
    return job.services


def _resolve(key: Key, job: JobContext) -> str:
    return str(key(job)) if callable(key) else key


class RateLimited(Middleware):
    """Hold the job back while the named ``limiter`` has no room for another start."""

    def __init__(self, name: str, *, count_attempt: bool = False) -> None:
        self.name = name
        self.count_attempt = count_attempt
        self.releases = True

    def dont_release(self) -> Self:
        """Delete jobs over the limit instead of releasing them."""
        self.releases = False
        return self

    def before(self, job: JobContext) -> bool:
        limit = limits.get_limit(self.name)
        services = _services(job)
        wait_s = limits.admit(services.redis, services.keys, limit, limit.partition(job))
        if not wait_s:
            return True
        if self.releases:
            job.release(wait_s, counts=self.count_attempt)
        else:
            job.delete()
        return False


class WithoutOverlapping(Middleware):
    """Run at most one job per key at a time, across all workers."""

    def __init__(self, key: Key = "") -> None:
        self.key = key
        self.release_after_s = 0.0
        self.releases = True
        self.ttl_s = DEFAULT_LOCK_TTL_S
        self.across_jobs = False
        self._tokens: dict[JobContext, tuple[str, str]] = {}
        self._guard = threading.Lock()

    def release_after(self, seconds: float) -> Self:
        self.release_after_s = seconds
        return self

    def dont_release(self) -> Self:
        self.releases = False
        return self

    def expire_after(self, seconds: float) -> Self:
        """Lock lifetime: a crashed worker's lock frees itself; keep it above the job's timeout."""
        self.ttl_s = seconds
        return self

    def shared(self) -> Self:
        """One lock for every job class that uses this key."""
        self.across_jobs = True
        return self

    def before(self, job: JobContext) -> bool:
        services = _services(job)
        lock_key = services.keys.overlap_lock(self._lock_name(job))
        token = uuid.uuid4().hex
        if Locks(services.redis).acquire(lock_key, token, self.ttl_s):
            with self._guard:
                self._tokens[job] = (lock_key, token)
            return True
        if self.releases:
            job.release(self.release_after_s, counts=False)
        else:
            job.delete()
        return False

    def after(self, job: JobContext, error: BaseException | None) -> None:
        with self._guard:
            held = self._tokens.pop(job, None)
        if held is None:
            return
        try:
            Locks(_services(job).redis).release(*held)
        except redis.RedisError as exc:
            log.warning("could not unlock %s (%s); it frees itself when it expires", held[0], exc)

    def _lock_name(self, job: JobContext) -> str:
        key = _resolve(self.key, job)
        if self.across_jobs:
            if not key:
                raise ValueError("WithoutOverlapping(...).shared() needs a key")
            return key
        return f"{job.job_name}:{key}" if key else job.job_name


class ThrottlesExceptions(Middleware):
    """After ``max_attempts`` exceptions, stop running the job for ``decay_s``.

    Counted exceptions become releases (after ``backoff``, or the cool-down once
    the limit is reached); a success clears the count.
    """

    def __init__(self, max_attempts: int, decay_s: float) -> None:
        if max_attempts < 1:
            raise ValueError("ThrottlesExceptions needs max_attempts >= 1")
        self.max_attempts = max_attempts
        self.decay_s = decay_s
        self.backoff_s = 0.0
        self.key: Key | None = None
        self.counted: tuple[type[BaseException], ...] = (Exception,)

    def by(self, key: Key) -> Self:
        """Count under this key (shared by every job using it) instead of the job's name."""
        self.key = key
        return self

    def by_exception(self, *types: type[BaseException] | tuple[type[BaseException], ...]) -> Self:
        """Count only these exception types; others take the job's usual retry path."""
        self.counted = tuple(types)  # type: ignore[arg-type]  # isinstance takes nested tuples
        return self

    def backoff(self, seconds: float) -> Self:
        """Delay before retrying after a counted exception, below the limit."""
        self.backoff_s = seconds
        return self

    def before(self, job: JobContext) -> bool:
        client = _services(job).redis
        wait_s = limits.throttled_for(client, self._key(job), self.max_attempts)
        if not wait_s:
            return True
        job.release(wait_s, counts=False)
        return False

    def after(self, job: JobContext, error: BaseException | None) -> None:
        if job.decision is not None:  # held back, or the job decided for itself
            return
        if error is not None and not isinstance(error, self.counted):
            return
        client = _services(job).redis
        try:
            if error is None:
                limits.clear(client, self._key(job))
                return
            count = limits.hit(client, self._key(job), self.max_attempts, self.decay_s)
        except redis.RedisError as exc:
            log.warning("could not count %s's exception (%s); retrying as usual", job.job_name, exc)
            return
        log.info("%s raised %r (%d/%d)", job.job_name, error, count, self.max_attempts)
        job.release(self.decay_s if count >= self.max_attempts else self.backoff_s)

    def _key(self, job: JobContext) -> str:
        key = job.job_name if self.key is None else _resolve(self.key, job)
        return _services(job).keys.exception_throttle(key)


class Skip(Middleware):
    """Delete the job without running it when a condition holds (``when``) or fails (``unless``)."""

    def __init__(self, condition: bool | Callable[[JobContext], bool], *, skip_if: bool) -> None:
        self.condition = condition
        self.skip_if = skip_if

    @classmethod
    def when(cls, condition: bool | Callable[[JobContext], bool]) -> Skip:
        return cls(condition, skip_if=True)

    @classmethod
    def unless(cls, condition: bool | Callable[[JobContext], bool]) -> Skip:
        return cls(condition, skip_if=False)

    def before(self, job: JobContext) -> bool:
        holds = self.condition(job) if callable(self.condition) else self.condition
        if bool(holds) == self.skip_if:
            job.delete()
            return False
        return True
