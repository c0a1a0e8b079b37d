"""``skyline migrate``, ``up``, ``down`` and ``demo``: getting a system running."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import click

from core import demo as demo_jobs
from core.cli.common import AppContext, pass_app, progress, took
from core.connections import redact, redis_url
from core.db import migrate as run_migrations
from core.dispatcher import Dispatcher
from core.embedded import stop_embedded_redis
from core.schema_revision import SCHEMA_REVISION

STOP_GRACE_S = 30
POLL_S = 0.2
DEMO_PAUSE_S = 1.0
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


@click.command()
@pass_app
def migrate(app: AppContext) -> None:
    """Create or upgrade Skyline's SQL tables."""
    started = time.monotonic()
    with progress("Migrating the database", count=False):
        applied = run_migrations(app.runtime.engine)
    where = redact(app.settings.sql_url())
    if not applied:
        click.echo(f"Database already at revision {SCHEMA_REVISION}: {where}")
        return
    click.echo(
        f"Database migrated to revision {applied[-1]} (applied {', '.join(applied)})"
        f" in {took(started)}: {where}"
    )


@click.command()
@click.option("--demo", "with_demo", is_flag=True, help="Also produce a stream of demo jobs.")
@click.option("--queues", default=demo_jobs.DEMO_QUEUES, show_default=True)
@click.option("--host", help="Dashboard address (default: [dashboard] host, 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Dashboard port (default: [dashboard] port, 8000; 0 picks a free one).",
)
@pass_app
def up(app: AppContext, with_demo: bool, queues: str, host: str | None, port: int | None) -> None:
    """Run Skyline on this machine: Redis (embedded unless REDIS_URL), SQL, the supervisors,
    the scheduler and the dashboard."""
    if with_demo and "core.demo" not in app.settings.app:
        app.overrides["app"] = [*app.settings.app, "core.demo"]
        del app.settings
    settings, runtime = app.settings, app.runtime
    url = redis_url(settings)
    run_migrations(runtime.engine)
    click.echo(f"Redis:    {redact(url)}{'  (embedded)' if settings.embedded else ''}")
    click.echo(f"Database: {redact(settings.sql_url())}")
    click.echo(f"Workers:  the environment's pools, or one for {queues}; Ctrl-C stops everything")
    env = _child_environment(app)
    children: dict[str, subprocess.Popen] = {}
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        # The master runs the scheduler; the dashboard runs in a process of its own, so
        # that each stops on its own signal and neither can hold the other up.
        children["master supervisor"] = _spawn(env, "-v", "start", "--queues", queues)
        children["dashboard"] = _spawn(env, *_dashboard_command(host, port))
        _run_until_one_stops(children, runtime.dispatcher if with_demo else None)
    except KeyboardInterrupt:
        click.echo("Stopping: the workers finish their current jobs.")
    finally:
        _stop(children)
    _report_early_stop(children)


def _child_environment(app: AppContext) -> dict[str, str]:
    env = {**os.environ, "SKYLINE_APP": ",".join(app.settings.app)}
    if app.config_file:
        env["SKYLINE_CONFIG"] = app.config_file
    return env


def _dashboard_command(host: str | None, port: int | None) -> list[str]:
    """The dashboard without a scheduler of its own (the master's runs); on a fresh
    install it makes the first admin and prints the password, once."""
    command = ["dashboard", "--no-scheduler", "--first-admin"]
    command += ["--host", host] if host else []
    return command + (["--port", str(port)] if port is not None else [])


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "core.cli", *args]
    return subprocess.Popen(command, env=env, preexec_fn=_stop_with(os.getpid()))


def _stop_with(parent_pid: int) -> Callable[[], None] | None:
    """Where Linux allows it, a child gets SIGTERM when `skyline up` dies without stopping
    it (SIGKILL, a crash): no master or dashboard is left running unowned, holding the
    port and the workers."""
    if not sys.platform.startswith("linux"):
        return None

    def in_child() -> None:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def _run_until_one_stops(
    children: dict[str, subprocess.Popen], dispatcher: Dispatcher | None
) -> None:
    """Until a process stops by itself (or a signal comes); demo jobs flow meanwhile."""
    round_no = 0
    while all(child.poll() is None for child in children.values()):
        if dispatcher is not None:
            round_no += 1
            demo_jobs.produce_round(dispatcher, round_no)
        time.sleep(DEMO_PAUSE_S if dispatcher is not None else POLL_S)


def _stop(children: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to each, then wait; a process still running at the deadline is killed."""
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, child in children.items():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), POLL_S))
        except subprocess.TimeoutExpired:
            click.echo(f"The {name} did not stop within {STOP_GRACE_S} s: killed.", err=True)
            child.kill()
            child.wait()


def _report_early_stop(children: dict[str, subprocess.Popen]) -> None:
    """A process that failed (a busy port, a bad config) fails the command; one that our
    SIGTERM stopped before it could handle signals did not fail."""
    failed = [
        f"the {name} exited with {child.returncode}"
        for name, child in children.items()
        if child.returncode not in (0, -signal.SIGTERM)
    ]
    if failed:
        raise click.ClickException(f"{'; '.join(failed)} (see above): everything is stopped")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@click.command()
@pass_app
def down(app: AppContext) -> None:
    """Stop the embedded Redis (it keeps its data in the state folder)."""
    stopped = stop_embedded_redis(app.settings.state_dir)
    click.echo("Embedded Redis stopped." if stopped else "Embedded Redis was not running.")


@click.command()
@click.option("--rounds", type=click.IntRange(min=1), help="Stop after N rounds (default: run).")
@click.option("--pause", type=click.FloatRange(min=0), default=1.0, show_default=True)
@pass_app
def demo(app: AppContext, rounds: int | None, pause: float) -> None:
    """Push a realistic mix of demo jobs (run `skyline work high,default,low --app core.demo`)."""
    app.runtime.ensure_schema()  # the batches live in SQL
    try:
        pushed = demo_jobs.produce(app.runtime.dispatcher, rounds, pause)
    except KeyboardInterrupt:
        return
    click.echo(f"Pushed {pushed} demo jobs.")
