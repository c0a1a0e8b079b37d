"""Serving the dashboard: uvicorn on a socket bound here, the metrics scheduler beside it,
and the first admin of a fresh install.

The socket is bound before uvicorn starts, so a busy port is a one-line error and the
printed URL is one that already accepts connections (port 0 picks a free one).
"""

from __future__ import annotations

import gc
import secrets
import signal
import socket
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from core.config_model import ConfigError
from core.runtime import Runtime
from core.scheduler import start_scheduler, stop_scheduler
from core.settings import Settings
from dashboard.app import create_app
from dashboard.users import UserError, UserRepository

FIRST_ADMIN = "admin@localhost"
SHUTDOWN_GRACE_S = 5  # open requests get this long to finish once asked to stop


def listening_on(settings: Settings, host: str | None, port: int | None) -> Settings:
    """The settings with the dashboard's address replaced by the command's options, so the
    exposure check sees the address actually served."""
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    dashboard = settings.dashboard.model_copy(update=changes)
    return settings.model_copy(update={"dashboard": dashboard})


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"the dashboard cannot listen on {host}:{port}: {reason} "
            "(choose another address with --host / --port or [dashboard] host / port)"
        ) from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def create_first_admin(users: UserRepository) -> str | None:
    """On a fresh install (no users at all), an admin with a random password; returns the
    password to show once, or None when there were users already."""
    if users.count():
        return None
    password = secrets.token_urlsafe(18)
    try:
        users.add(FIRST_ADMIN, password, "admin")
    except UserError:  # another process made it first
        return None
    return password


def serve(
    runtime: Runtime, *, scheduler: bool = True, announce: Callable[[str], None] = print
) -> None:
    """Run until SIGINT or SIGTERM; the scheduler (if any) stops after the server."""
    settings = runtime.settings.dashboard
    app = create_app(runtime)
    freeze_startup_objects()
    sock = bind(settings.host, settings.port)
    signal.signal(signal.SIGTERM, _interrupt)
    tasks = start_scheduler(runtime) if scheduler else None
    try:
        announce(url_of(sock))
        _server(app).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if tasks is not None:
            stop_scheduler(tasks)


def freeze_startup_objects() -> None:
    """Move what start-up made (modules, templates, settings: some 200,000 objects that live
    as long as the process) out of the garbage collector's reach. A full collection walks
    every tracked object, which took 300 ms here, and lands on whichever request happens to
    trigger it: it was the dashboard's p95."""
    gc.collect()
    gc.freeze()


def _server(app: Starlette) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_config=None,  # the CLI's logging settings (-v) apply to uvicorn's loggers too
        # request.client must stay the peer: the proxy sign-on trusts it by address
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return uvicorn.Server(config)


def _interrupt(*_: object) -> None:
    """uvicorn handles SIGTERM itself while it runs, then raises it again once it has
    stopped: both before and after, it ends the command like Ctrl-C does."""
    raise KeyboardInterrupt
