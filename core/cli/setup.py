"""``skyline migrate``, ``up``, ``down`` and ``demo``: getting a system running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from core import demo as demo_jobs
from core.cli.common import AppContext, pass_app
from core.connections import redact, redis_url
from core.db import migrate as run_migrations
from core.embedded import stop_embedded_redis

STOP_GRACE_S = 30


@click.command()
@pass_app
def migrate(app: AppContext) -> None:
    """Create or upgrade Skyline's SQL tables."""
    run_migrations(app.runtime.engine)
    click.echo(f"Database migrated: {redact(app.settings.sql_url())}")


@click.command()
@click.option("--demo", "with_demo", is_flag=True, help="Also produce a stream of demo jobs.")
@click.option("--queues", default=demo_jobs.DEMO_QUEUES, show_default=True)
@pass_app
def up(app: AppContext, with_demo: bool, queues: str) -> None:
    """Run Skyline on this machine: Redis (embedded unless REDIS_URL), SQL, the supervisors."""
    if with_demo and "core.demo" not in app.settings.app:
        app.overrides["app"] = [*app.settings.app, "core.demo"]
        del app.settings
    settings, runtime = app.settings, app.runtime
    url = redis_url(settings)
    run_migrations(runtime.engine)
    click.echo(f"Redis:    {redact(url)}{'  (embedded)' if settings.embedded else ''}")
    click.echo(f"Database: {redact(settings.sql_url())}")
    click.echo(f"Workers:  the environment's pools, or one for {queues}; Ctrl-C stops everything")
    env = {**os.environ, "SKYLINE_APP": ",".join(settings.app)}
    command = [sys.executable, "-m", "core.cli", "-v", "start", "--queues", queues]
    master = subprocess.Popen(command, env=env)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if with_demo:
            demo_jobs.produce(runtime.dispatcher)
        master.wait()
    except KeyboardInterrupt:
        click.echo("Stopping: the workers finish their current jobs.")
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=STOP_GRACE_S)


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
    try:
        pushed = demo_jobs.produce(app.runtime.dispatcher, rounds, pause)
    except KeyboardInterrupt:
        return
    click.echo(f"Pushed {pushed} demo jobs.")
