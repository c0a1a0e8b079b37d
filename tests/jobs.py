"""Jobs the tests dispatch; worker subprocesses import this module as their app.

Each run appends one JSON line to the run log (``tests/run_log.py``) so a test can
count executions across processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time

from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from core import Job, current_job, job, use_model_session
from core.db import database_engine
from tests.run_log import record, runs  # noqa: F401 (tests read the run log through this module)


@job
def noop(n: int = 0) -> None:
    record("noop", n=n)


@job
def bare_noop() -> None:
    """Does nothing at all, for throughput measurements."""


@job(queue="typed")
def typed(value) -> None:
    record("typed", type=type(value).__name__, value=repr(value))


@job(tries=3, on_failed=lambda exc, n: record("failed_hook", n=n, error=str(exc)))
def always_fails(n: int) -> None:
    record("always_fails", n=n, attempt=current_job().attempts)
    raise ValueError(f"always fails {n}")


@job
def raises(n: int) -> None:
    """Sets no options, so the worker's defaults apply."""
    record("raises", n=n)
    raise RuntimeError(f"raises {n}")


@job(tries=5)
def fails_until(attempt_ok: int) -> None:
    attempt = current_job().attempts
    record("fails_until", attempt=attempt)
    if attempt < attempt_ok:
        raise RuntimeError(f"attempt {attempt} fails")


@job(tries=1)
def fails_unless_retried(n: int = 0) -> None:
    """Fails for good on its first run; its retry from the failed store (which names the
    job it retries) completes."""
    retry_of = current_job().body.get("retry_of")
    record("fails_unless_retried", n=n, retry_of=retry_of)
    if not retry_of:
        raise RuntimeError(f"order {n}: the payment gateway timed out")


@job
def releases_once() -> None:
    attempt = current_job().attempts
    record("releases_once", attempt=attempt)
    if attempt == 1:
        current_job().release(0)


@job
def deletes_itself() -> None:
    record("deletes_itself")
    current_job().delete()


@job
def fails_itself() -> None:
    record("fails_itself")
    current_job().fail("the job gave up")


@job(timeout=0)
def slow(n: int, seconds: float) -> None:
    record("slow_start", n=n)
    time.sleep(seconds)
    record("slow_end", n=n)


@job(timeout=0)
async def async_sleep(n: int, seconds: float) -> None:
    await asyncio.sleep(seconds)
    record("async_sleep", n=n)


@job(timeout=1, tries=1)
def sleeps_forever() -> None:
    record("sleeps_forever")
    time.sleep(3600)


@job(timeout=1, tries=1)
async def async_overruns() -> None:
    record("async_overruns")
    await asyncio.sleep(3600)


@job(tries=0)
def kills_its_worker() -> None:
    record("kills_its_worker", attempt=current_job().attempts)
    os.kill(os.getpid(), signal.SIGKILL)


@job(tries=0)
def kill_once(n: int) -> None:
    """Kills its worker on the first attempt only; a later attempt completes."""
    attempt = current_job().attempts
    record("kill_once", n=n, attempt=attempt)
    if attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    record("kill_once_done", n=n)


class Greeting(Job):
    queue = "greetings"
    tries = 2

    def __init__(self, name: str, times: int = 1) -> None:
        self.name = name
        self.times = times

    def handle(self) -> None:
        record("greeting", name=self.name, times=self.times)


class TaggedGreeting(Job):
    """Tags each job from its own data."""

    def __init__(self, name: str) -> None:
        self.name = name

    def tags(self) -> list[str]:
        return [f"greeting:{self.name}"]

    def handle(self) -> None:
        record("tagged_greeting", name=self.name)


class AsyncGreeting(Job):
    def __init__(self, name: str) -> None:
        self.name = name

    async def handle(self) -> None:
        await asyncio.sleep(0)
        record("async_greeting", name=self.name)


class FailingClassJob(Job):
    tries = 1

    def __init__(self, n: int) -> None:
        self.n = n

    def handle(self) -> None:
        raise KeyError(self.n)

    def failed(self, exc: BaseException) -> None:
        record("class_failed_hook", n=self.n, error=repr(exc))


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "test_customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


@job
def greet_customer(customer: Customer) -> None:
    record("greet_customer", name=customer.name)


@job(delete_when_missing_models=True)
def greet_customer_or_skip(customer: Customer) -> None:
    record("greet_customer_or_skip", name=customer.name)


def use_database(url: str, *, create: bool = True) -> sessionmaker[Session]:
    """Tests create the table; workers only connect (several starting at once would race)."""
    engine = database_engine(url) if "://" in url else create_engine(url)
    if create:
        Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    use_model_session(factory)
    return factory


if os.environ.get("DATABASE_URL"):
    use_database(os.environ["DATABASE_URL"], create=False)
