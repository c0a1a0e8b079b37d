"""``skyline work``: run one worker process."""

from __future__ import annotations

import sys

import click

from core.cli.common import AppContext, pass_app, set_verbosity
from core.dispatcher import set_dispatcher
from core.execution import WorkerDefaults
from core.registry import registry
from core.worker import Worker, WorkerOptions


def _backoff(value: str | None) -> int | list[int] | None:
    if value is None:
        return None
    try:
        parts = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter("use seconds, or a comma list like 10,60,300") from None
    return parts[0] if len(parts) == 1 else parts


@click.command()
@click.argument("queues", required=False)
@click.option("--connection", help="Queue connection (default: default_connection).")
@click.option("--app", "apps", multiple=True, help="Module that registers jobs (repeatable).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Jobs run at once in this process.")
@click.option("--once", is_flag=True, help="Process one job, then exit.")
@click.option("--max-jobs", type=click.IntRange(min=0), default=0, help="Exit after N jobs.")
@click.option("--max-time", type=click.FloatRange(min=0), default=0, help="Exit after N seconds.")
@click.option("--memory", type=click.IntRange(min=0), help="Exit when RSS passes N MB.")
@click.option("--sleep", type=click.FloatRange(min=0.01), help="Longest wait on empty queues (s).")
@click.option("--stop-when-empty", is_flag=True, help="Exit once the queues are empty.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Default job timeout (s; 0: none).")
@click.option("--tries", type=click.IntRange(min=0), help="Default tries (0: unlimited).")
@click.option("--backoff", help="Default backoff: seconds, or a list like 10,60.")
@click.option("--rest", type=click.FloatRange(min=0), default=0, help="Pause after each job (s).")
@click.option("-v", "--verbose", count=True, help="-v: one line per job; -vv: debug.")
@click.option("--status-fd", type=int, hidden=True, help="Pipe to the supervisor.")
@click.option("--paused", is_flag=True, hidden=True, help="Start paused; SIGCONT continues.")
@pass_app
def work(
    app: AppContext,
    queues: str | None,
    connection: str | None,
    apps: tuple[str, ...],
    concurrency: int | None,
    once: bool,
    max_jobs: int,
    max_time: float,
    memory: int | None,
    sleep: float | None,
    stop_when_empty: bool,
    timeout: float | None,
    tries: int | None,
    backoff: str | None,
    rest: float,
    verbose: int,
    status_fd: int | None,
    paused: bool,
) -> None:
    """Process jobs from QUEUES (comma-separated, highest priority first)."""
    if verbose:
        set_verbosity(verbose)
    if apps:
        app.overrides["app"] = list(apps)
    settings, runtime = app.settings, app.runtime
    conn = settings.connection(connection)
    if conn.driver != "redis":
        raise click.UsageError(f"connection {connection!r} is not a Redis connection")
    d = settings.worker
    backoff_s = _backoff(backoff)
    options = WorkerOptions(
        queues=tuple((queues or "default").split(",")),
        concurrency=concurrency or d.concurrency,
        once=once,
        max_jobs=max_jobs,
        max_time_s=max_time,
        memory_mb=d.memory if memory is None else memory,
        sleep_s=sleep or d.sleep,
        stop_when_empty=stop_when_empty,
        rest_s=rest,
        lease_s=conn.retry_after,
        status_fd=status_fd,
        paused=paused,
        defaults=WorkerDefaults(
            tries=d.tries if tries is None else tries,
            backoff=d.backoff if backoff_s is None else backoff_s,
            timeout=d.timeout if timeout is None else timeout,
            worker_lost_limit=conn.worker_lost_limit,
        ),
    )
    queue = runtime.queue(connection)
    runtime.ensure_schema()  # a store that cannot take failed jobs stops the worker now
    set_dispatcher(runtime.dispatcher)  # jobs that dispatch jobs reuse the worker's connections
    keys = settings.signing_keys()
    workflows = runtime.dispatcher.workflows
    recorder = runtime.dispatcher.recorder(connection)
    worker = Worker(
        queue, lambda: runtime.failed_store, registry, keys, options, workflows, recorder
    )
    sys.exit(worker.run())
