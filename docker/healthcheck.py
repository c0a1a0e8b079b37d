"""A container's health check: ``python docker/healthcheck.py master|dashboard [URL]``.

``master``: a master supervisor on this host (the container's host name) has written its
heartbeat within the heartbeat TTL. A master that hangs stops beating while its process
lives on, which the container's own liveness would miss.

``dashboard``: the dashboard's ``/health`` answers 200, which it does only while Redis and
SQL answer it.

Exit status 0 is healthy, 1 unhealthy (with the reason on stderr), as Docker expects.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request

import redis

from core.config_model import ConfigError
from core.control import ControlRepository
from core.runtime import Runtime
from core.settings import load_settings

DASHBOARD_HEALTH_URL = "http://127.0.0.1:8000/health"
TIMEOUT_S = 5


def master_problem() -> str | None:
    try:
        queue = Runtime(load_settings()).queue()
        masters = ControlRepository(queue.client, queue.keys).alive("master")
    except (ConfigError, redis.RedisError) as exc:
        return str(exc)
    host = socket.gethostname()
    if any(beat.details.get("host") == host for beat in masters):
        return None
    return f"no master on {host} has sent a heartbeat lately"


def dashboard_problem(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}"
    except OSError as exc:
        return f"{url}: {exc}"


def main(args: list[str]) -> None:
    if args[:1] == ["master"] and len(args) == 1:
        problem = master_problem()
    elif args[:1] == ["dashboard"] and len(args) <= 2:
        problem = dashboard_problem(args[1] if len(args) == 2 else DASHBOARD_HEALTH_URL)
    else:
        sys.exit("usage: healthcheck.py master | dashboard [URL]")
    if problem:
        sys.exit(f"unhealthy: {problem}")


if __name__ == "__main__":
    main(sys.argv[1:])
