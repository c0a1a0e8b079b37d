"""Fixtures for Claude requests: the fake Anthropic server, settings that point at it, and
workers (in this process, or ``skyline work`` processes) on the Claude queues."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

import core.claude.job  # noqa: F401  (registers the job in this process)
from core.claude.records import ClaudeRequestRecord
from core.claude.services import ClaudeServices, default_services
from core.dispatcher import set_dispatcher
from core.execution import WorkerDefaults
from core.registry import registry
from core.runtime import Runtime
from core.settings import Settings
from core.worker import Worker, WorkerOptions
from tests.claude.fake_anthropic import FakeAnthropic

T = TypeVar("T")
API_KEY = "sk-ant-test-key"
CLAUDE_QUEUES = ("claude-high", "claude-normal", "claude-low")
# Quick retries, so a test of five tries takes milliseconds.
FAST = dict(tries=3, backoff=0, timeout_s=5.0)


@pytest.fixture
def settings(settings: Settings, fake_anthropic: FakeAnthropic) -> Settings:
    return claude_on(settings, fake_anthropic)


def claude_on(settings: Settings, fake: FakeAnthropic, **claude: Any) -> Settings:
    """``settings`` with a ``[claude]`` table that sends requests to ``fake``, retrying
    fast; ``claude`` overrides more of the table."""
    table = settings.claude.model_copy(
        update=dict(api_key=SecretStr(API_KEY), base_url=fake.url, **FAST) | claude
    )
    return settings.model_copy(update={"claude": table})


@pytest.fixture
def services(runtime: Runtime) -> ClaudeServices:
    return default_services()


@pytest.fixture
def configure(runtime: Runtime) -> Iterator[Callable[..., ClaudeServices]]:
    """Change ``[claude]`` settings for one test: ``configure(tries=1, retry_429_free=False)``."""

    def configure(**changes: Any) -> ClaudeServices:
        claude = runtime.settings.claude.model_copy(update=changes)
        changed = Runtime(runtime.settings.model_copy(update={"claude": claude}))
        set_dispatcher(changed.dispatcher)
        return default_services()

    yield configure
    set_dispatcher(runtime.dispatcher)


def work(runtime: Runtime) -> int:
    """Run a worker in this process on the Claude queues until they are empty.

    On a thread of its own: the browser tests' Playwright keeps an event loop running on
    the main thread for the whole session, and the worker runs the async job on a loop.
    """
    options = WorkerOptions(
        queues=CLAUDE_QUEUES, stop_when_empty=True, defaults=WorkerDefaults(backoff=0)
    )
    keys = runtime.settings.signing_keys()
    worker = Worker(runtime.queue(), lambda: runtime.failed_store, registry, keys, options)
    return off_the_main_thread(worker.run, handle_signals=False)


def off_the_main_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def record(services: ClaudeServices, request_id: str) -> ClaudeRequestRecord:
    found = services.requests.get(request_id)
    assert found is not None, f"no request {request_id}"
    return found


@pytest.fixture
def claude_worker_env(
    worker_env: dict[str, str], fake_anthropic: FakeAnthropic, tmp_path: Path
) -> dict[str, str]:
    """``skyline work`` processes run the Claude job against the fake server, retrying fast."""
    config = tmp_path / "claude.toml"
    config.write_text("[claude]\ntries = 3\nbackoff = 0\ntimeout_s = 5\n")
    worker_env.update(
        SKYLINE_APP=f"{worker_env['SKYLINE_APP']},core.claude.job",
        SKYLINE_CONFIG=str(config),
        ANTHROPIC_API_KEY=API_KEY,
        ANTHROPIC_BASE_URL=fake_anthropic.url,
    )
    return worker_env
