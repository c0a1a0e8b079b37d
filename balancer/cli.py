"""``skyline start`` and the commands that steer running masters across hosts."""

from __future__ import annotations

import os
import sys
import time

import click
import psutil

from balancer.config import default_supervisor, load_pools
from balancer.master import Master, master_name
from balancer.supervisor import Supervisor
from core.cli.common import AppContext, echo_json, pass_app
from core.control import ControlRepository
from core.scheduler import start_scheduler, stop_scheduler

EXIT_RUNNING, EXIT_PAUSED, EXIT_INACTIVE = 0, 1, 2
WORKER_MARK = "--status-fd"  # only supervised workers carry it


def _control(app: AppContext) -> ControlRepository:
    queue = app.runtime.queue()
    return ControlRepository(queue.client, queue.keys)


def _masters(app: AppContext, only: str | None) -> list[str]:
    names = [beat.name for beat in _control(app).alive("master")]
    if only:
        if only not in names:
            raise click.ClickException(f"no running master named {only!r} (see `skyline list`)")
        return [only]
    return names


@click.command()
@click.option("--name", help="This master's name (default: host name and a random part).")
@click.option("--env", "environment", help="Environment to run (default: SKYLINE_ENV).")
@click.option(
    "--queues",
    help="With no pools declared for the environment: one auto-balanced "
    "supervisor for these queues (comma-separated).",
)
@pass_app
def start(app: AppContext, name: str | None, environment: str | None, queues: str | None) -> None:
    """Run the master supervisor for this host: the pools of the current environment."""
    settings, runtime = app.settings, app.runtime
    runtime.ensure_schema()
    if queues and not settings.environments.get(environment or settings.env):
        pools = {"default": default_supervisor(settings, queues.split(","))}
    else:
        pools = load_pools(settings, environment)
    control = _control(app)
    name = name or master_name()
    env = dict(os.environ)
    supervisors = [
        Supervisor(f"{name}:{sup}", config, runtime.queue(config.connection), control, env)
        for sup, config in pools.items()
    ]
    master = Master(
        name,
        supervisors,
        control,
        fast_termination=settings.fast_termination,
        memory_mb=settings.master_memory,
    )
    scheduler = start_scheduler(runtime)  # snapshots, retention and alerts; one taker cluster-wide
    try:
        status = master.run()
    finally:
        stop_scheduler(scheduler)
    sys.exit(status)


def _send(app: AppContext, command: str, master: str | None) -> list[str]:
    names = _masters(app, master)
    control = _control(app)
    for target in names:
        control.send(target, command)
    return names


@click.command()
@click.option("--master", help="Only this master (default: every running master).")
@pass_app
def pause(app: AppContext, master: str | None) -> None:
    """Stop picking new jobs (running jobs finish)."""
    click.echo(f"Paused {len(_send(app, 'pause', master))} master(s).")


@click.command("continue")
@click.option("--master", help="Only this master (default: every running master).")
@pass_app
def continue_(app: AppContext, master: str | None) -> None:
    """Resume picking jobs after a pause."""
    click.echo(f"Continued {len(_send(app, 'continue', master))} master(s).")


@click.command()
@click.option("--master", help="Only this master (default: every running master).")
@click.option("--wait", is_flag=True, help="Return once the masters have exited.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Longest --wait (s).")
@pass_app
def terminate(app: AppContext, master: str | None, wait: bool, timeout: float) -> None:
    """Stop masters after their running jobs; a process manager then starts the new code."""
    names = _send(app, "terminate", master)
    click.echo(f"Asked {len(names)} master(s) to terminate.")
    deadline = time.monotonic() + timeout
    while wait and time.monotonic() < deadline:
        alive = {beat.name for beat in _control(app).alive("master")}
        if not alive & set(names):
            click.echo("Terminated.")
            return
        time.sleep(0.2)
    if wait:
        raise click.ClickException(f"masters still running after {timeout:g} s")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """running (exit 0), paused (1) or inactive (2), per master and supervisor."""
    control = _control(app)
    masters, supervisors = control.alive("master"), control.alive("supervisor")
    if not masters:
        overall, code = "inactive", EXIT_INACTIVE
    elif all(m.status == "paused" for m in masters):
        overall, code = "paused", EXIT_PAUSED
    else:
        overall, code = "running", EXIT_RUNNING
    if as_json:
        echo_json(
            {
                "status": overall,
                "masters": {m.name: m.status for m in masters},
                "supervisors": {s.name: s.status for s in supervisors},
            }
        )
    else:
        click.echo(f"Skyline is {overall}.")
        for beat in [*masters, *supervisors]:
            click.echo(f"  {beat.kind:<10} {beat.name}: {beat.status}")
    sys.exit(code)


@click.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_(app: AppContext, as_json: bool) -> None:
    """Masters, their supervisors and processes."""
    control = _control(app)
    masters, supervisors = control.alive("master"), control.alive("supervisor")
    if as_json:
        echo_json(
            {"masters": [vars(m) for m in masters], "supervisors": [vars(s) for s in supervisors]}
        )
        return
    if not masters:
        click.echo("No master is running (start one with `skyline start`).")
    for m in masters:
        click.echo(
            f"{m.name} ({m.status}) host {m.details.get('host')} pid "
            f"{m.details.get('pid')}, {m.details.get('processes', 0)} processes"
        )
        for s in supervisors:
            if s.name.startswith(m.name + ":"):
                pools = ", ".join(f"{q}: {p['processes']}" for q, p in s.details["pools"].items())
                click.echo(f"  {s.name} ({s.status}) balance {s.details['balance']}: {pools}")


@click.group()
def supervisor() -> None:
    """Pause or continue one supervisor."""


def _send_to_supervisor(app: AppContext, name: str, command: str) -> None:
    control = _control(app)
    if name not in {beat.name for beat in control.alive("supervisor")}:
        raise click.ClickException(f"no running supervisor named {name!r} (see `skyline list`)")
    control.send(name, command)


@supervisor.command("pause")
@click.argument("name")
@pass_app
def pause_supervisor(app: AppContext, name: str) -> None:
    """Stop one supervisor's workers picking jobs (NAME is master:pool)."""
    _send_to_supervisor(app, name, "pause")
    click.echo(f"Paused supervisor {name}.")


@supervisor.command("continue")
@click.argument("name")
@pass_app
def continue_supervisor(app: AppContext, name: str) -> None:
    """Let one supervisor's workers pick jobs again."""
    _send_to_supervisor(app, name, "continue")
    click.echo(f"Continued supervisor {name}.")


@click.command()
def purge() -> None:
    """Stop supervised worker processes on this host whose master is gone."""
    stopped = 0
    for process in psutil.process_iter(["cmdline", "ppid"]):
        cmdline = process.info["cmdline"] or []
        if WORKER_MARK in cmdline and "core.cli" in cmdline and process.info["ppid"] == 1:
            process.terminate()
            stopped += 1
    click.echo(f"Stopped {stopped} orphaned worker process(es).")


COMMANDS = [start, pause, continue_, terminate, status, list_, supervisor, purge]
