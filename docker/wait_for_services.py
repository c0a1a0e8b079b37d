"""Wait, within a bound, for the Redis and SQL servers Skyline is configured to use.

The entrypoint runs this before ``skyline``: in a compose stack the containers start
together, and a master that finds no Redis yet would fail and be restarted in a loop.
The servers are read from Skyline's own settings (``REDIS_URL``, ``DATABASE_URL``,
``SKYLINE_CONFIG``...), so this waits for exactly what the command will connect to;
with nothing configured Skyline embeds its own, and there is nothing to wait for.
``ENTRYPOINT_WAIT_S`` bounds the wait (seconds, default 60; 0 skips it).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import redis
from sqlalchemy.exc import SQLAlchemyError

from core.config_model import ConfigError
from core.connections import redact
from core.db import database_engine
from core.settings import load_settings

WAIT_VARIABLE = "ENTRYPOINT_WAIT_S"
DEFAULT_WAIT_S = 60.0
PROBE_TIMEOUT_S = 2
RETRY_S = 0.5

Probe = Callable[[], object]


def redis_probe(url: str) -> Probe:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    )
    return client.ping


def sql_probe(url: str) -> Probe:
    engine = database_engine(url)

    def probe() -> None:
        with engine.connect():
            pass

    return probe


def wait_for(what: str, probe: Probe, deadline: float) -> Exception | None:
    """None once the probe succeeds; its last error if the deadline passes first. The
    first failure is said once, so a container's log shows what it is waiting for."""
    waiting = False
    while True:
        try:
            probe()
            return None
        except (redis.RedisError, SQLAlchemyError, OSError) as exc:
            if time.monotonic() + RETRY_S > deadline:
                return exc
            if not waiting:
                print(f"entrypoint: waiting for {what}", file=sys.stderr, flush=True)
                waiting = True
        time.sleep(RETRY_S)


def services() -> list[tuple[str, str, str, Probe]]:
    """(what, redacted URL, the variable that sets it, probe) for each configured server."""
    settings = load_settings()
    found = []
    redis_url = settings.connection(None).url or settings.redis_url
    if redis_url:
        found.append(("Redis", redact(redis_url), "REDIS_URL", redis_probe(redis_url)))
    if settings.database_url:
        url = settings.database_url
        found.append(("the database", redact(url), "DATABASE_URL", sql_probe(url)))
    return found


def main() -> None:
    value = os.environ.get(WAIT_VARIABLE) or str(DEFAULT_WAIT_S)
    try:
        bound_s = float(value)
    except ValueError:
        sys.exit(f"entrypoint: {WAIT_VARIABLE}={value!r} is not a number of seconds")
    if bound_s <= 0:
        return
    try:
        found = services()
    except ConfigError as exc:
        sys.exit(f"entrypoint: {exc}")
    deadline = time.monotonic() + bound_s
    for what, shown, variable, probe in found:
        error = wait_for(f"{what} at {shown}", probe, deadline)
        if error is not None:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            sys.exit(
                f"entrypoint: {what} at {shown} did not answer within {bound_s:g} s ({reason}); "
                f"check {variable} and that the server is running ({WAIT_VARIABLE} sets the wait)"
            )


if __name__ == "__main__":
    main()
