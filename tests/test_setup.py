"""The embedded default: `skyline up` with nothing configured, and the embedded Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.embedded import embedded_url, ensure_embedded_redis, stop_embedded_redis
from tests.conftest import ROOT, skyline_command, wait_until


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A short path: the embedded Redis listens on a Unix socket inside it."""
    with tempfile.TemporaryDirectory(prefix="sky-") as folder:
        yield Path(folder)
        stop_embedded_redis(Path(folder))


def test_embedded_redis_starts_once_and_keeps_data_across_restarts(state_dir):
    url = ensure_embedded_redis(state_dir)
    assert ensure_embedded_redis(state_dir) == url == embedded_url(state_dir)
    client = redis.Redis.from_url(url)
    client.rpush("skyline:{queue:default}", "kept")
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"

    assert stop_embedded_redis(state_dir)
    assert not stop_embedded_redis(state_dir)
    ensure_embedded_redis(state_dir)

    assert client.lrange("skyline:{queue:default}", 0, -1) == [b"kept"]


@pytest.mark.slow
def test_skyline_up_runs_jobs_on_the_embedded_default_and_stops_on_ctrl_c(state_dir):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SKYLINE_") and k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(SKYLINE_STATE_DIR=str(state_dir), PYTHONPATH=str(ROOT))
    log_path = state_dir / "up.log"
    with open(log_path, "w") as log:
        up = subprocess.Popen(
            skyline_command("up", "--demo", "--port", "0"),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as a terminal gives it
        )
    try:
        wait_until(
            lambda: "COMPLETED" in log_path.read_text(), timeout_s=30, message=log_path.read_text()
        )
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C: every process of the group gets it
        assert up.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    text = log_path.read_text()
    assert "Stopping: the workers finish their current jobs." in text
    assert "(embedded)" in text
    assert (state_dir / "skyline.db").exists()
    assert (state_dir / "secret").stat().st_mode & 0o777 == 0o600
