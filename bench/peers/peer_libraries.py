"""The libraries the peer benchmark measures: what to install and how to run workers.

Versions are pinned to those installed on 2026-11-23, so that runs stay comparable;
bump them together and re-run. Each worker command is the library's own CLI, as its
docs recommend; ``concurrency`` says what the sleeping-jobs drain used. The last entry,
``floor``, is not a library but bench/peers/floor_app.py: redis-py alone, the least any
of them can cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROCESSES = 2
SLEEP_CONCURRENCY = 50  # jobs at once per process, where the library has such a knob


@dataclass(frozen=True)
class Library:
    name: str
    requirements: tuple[str, ...]
    concurrency: str  # how the 10 ms jobs run at once, for the table's notes
    bulk: str | None = None  # the bulk enqueue API, as the app module's BULK says

    def version(self) -> str:
        return self.requirements[0].split("==")[1] if self.requirements else "this tree"


LIBRARIES = {
    "skyline": Library(
        "skyline", (), f"asyncio, 2 processes x {SLEEP_CONCURRENCY}", "dispatch_bulk"
    ),
    "huey": Library(
        "huey",
        ("huey==3.5.4", "redis==8.1.0", "gevent==26.9.0"),
        f"greenlets, 2 consumers x {SLEEP_CONCURRENCY} (-k greenlet)",
    ),
    "dramatiq": Library(
        "dramatiq",
        ("dramatiq[redis]==2.2.1", "redis==8.1.0"),
        f"threads, 2 processes x {SLEEP_CONCURRENCY} (--threads)",
    ),
    "taskiq": Library(
        "taskiq",
        ("taskiq==0.13.0", "taskiq-redis==1.2.4", "redis==8.1.0"),
        f"asyncio, 2 workers x {SLEEP_CONCURRENCY} (--max-async-tasks)",
    ),
    "saq": Library(
        "saq",
        ("saq[redis]==0.26.4", "redis==7.4.1", "typing_extensions==4.16.0"),
        f"asyncio, 2 workers x {SLEEP_CONCURRENCY} (concurrency)",
    ),
    "arq": Library(
        "arq",
        ("arq==0.28.0", "redis==5.3.1"),
        f"asyncio, 2 processes x {SLEEP_CONCURRENCY} (max_jobs)",
    ),
    "streaq": Library(
        "streaq",
        ("streaq==7.2.0", "coredis==6.9.0", "redis==8.1.0"),
        f"asyncio, 2 workers x {SLEEP_CONCURRENCY} (concurrency)",
        "Worker.enqueue_many",
    ),
    "celery": Library(
        "celery",
        ("celery[redis]==5.7.0", "redis==8.1.0", "gevent==26.9.0"),
        f"gevent, 2 workers x {SLEEP_CONCURRENCY} (-P gevent -c)",
    ),
    "rq": Library(
        "rq",
        ("rq==3.0.0", "redis==8.1.0"),
        "processes: worker-pool -n 2, one fork per job",
        "Queue.enqueue_many",
    ),
    "floor": Library(
        "floor",
        ("redis==8.1.0",),
        f"threads, 2 processes x {SLEEP_CONCURRENCY}",
        "RPUSH of 1000 jobs",
    ),
}


Commands = list[list[str]]


def _skyline(python: Path, sleeping: bool, redis_url: str) -> Commands:
    extra = ["--concurrency", str(SLEEP_CONCURRENCY)] if sleeping else []
    work = [str(python), "-m", "core.cli", "work", "bench", "--app", "skyline_app", *extra]
    return [work] * PROCESSES


def _huey(python: Path, sleeping: bool, redis_url: str) -> Commands:
    consumer = [str(python.parent / "huey_consumer"), "huey_app.huey", "-n"]
    if sleeping:  # greenlets live in one process: one consumer per process
        return [[*consumer, "-k", "greenlet", "-w", str(SLEEP_CONCURRENCY)]] * PROCESSES
    return [[*consumer, "-k", "process", "-w", str(PROCESSES)]]


def _dramatiq(python: Path, sleeping: bool, redis_url: str) -> Commands:
    threads = str(SLEEP_CONCURRENCY) if sleeping else "8"  # 8: Dramatiq's default
    command = [str(python.parent / "dramatiq"), "dramatiq_app", "--processes", str(PROCESSES)]
    return [[*command, "--threads", threads]]


def _taskiq(python: Path, sleeping: bool, redis_url: str) -> Commands:
    extra = ["--max-async-tasks", str(SLEEP_CONCURRENCY)] if sleeping else []
    taskiq = str(python.parent / "taskiq")
    return [[taskiq, "worker", "taskiq_app:broker", "--workers", str(PROCESSES), *extra]]


def _saq(python: Path, sleeping: bool, redis_url: str) -> Commands:
    return [[str(python.parent / "saq"), "saq_app.settings", "--workers", str(PROCESSES)]]


def _arq(python: Path, sleeping: bool, redis_url: str) -> Commands:
    return [[str(python.parent / "arq"), "arq_app.WorkerSettings"]] * PROCESSES


def _streaq(python: Path, sleeping: bool, redis_url: str) -> Commands:
    streaq = str(python.parent / "streaq")
    return [[streaq, "run", "streaq_app:worker", "--workers", str(PROCESSES)]]


def _celery(python: Path, sleeping: bool, redis_url: str) -> Commands:
    celery = [str(python.parent / "celery"), "-A", "celery_app", "worker", "-l", "WARNING"]
    if sleeping:  # a gevent pool lives in one process: one worker per process
        pool = ["-P", "gevent", "-c", str(SLEEP_CONCURRENCY)]
        return [[*celery, *pool, "-n", f"w{i}@%h"] for i in range(PROCESSES)]
    return [[*celery, "-P", "prefork", "-c", str(PROCESSES), "-n", "w0@%h"]]


def _rq(python: Path, sleeping: bool, redis_url: str) -> Commands:
    pool = [str(python.parent / "rq"), "worker-pool", "-n", str(PROCESSES)]
    return [[*pool, "-u", redis_url, "bench"]]


def _floor(python: Path, sleeping: bool, redis_url: str) -> Commands:
    return [[str(python), "-m", "floor_app"]] * PROCESSES


COMMANDS = {
    "skyline": _skyline,
    "huey": _huey,
    "dramatiq": _dramatiq,
    "taskiq": _taskiq,
    "saq": _saq,
    "arq": _arq,
    "streaq": _streaq,
    "celery": _celery,
    "rq": _rq,
    "floor": _floor,
}


def worker_commands(lib: str, python: Path, sleeping: bool, redis_url: str) -> Commands:
    """One argv per process group to start; several where the CLI runs one process only."""
    return COMMANDS[lib](python, sleeping, redis_url)


def worker_env(lib: str, sleeping: bool) -> dict[str, str]:
    """Variables the app modules read: concurrency set in code, huey's gevent patch."""
    env = {"BENCH_CONCURRENCY": str(SLEEP_CONCURRENCY)} if sleeping else {}
    if lib == "huey" and sleeping:
        env["BENCH_GEVENT"] = "1"
    return env
