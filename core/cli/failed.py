"""``skyline failed``: the durable failed-job store."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from core.cli.common import AppContext, echo_json, hours_text, pass_app, plural, progress, took
from core.failed import FailedJobRecord
from core.retrying import RetryError, retry_failed, retry_pending


def _since(value: str | None) -> datetime | None:
    """``--since`` takes an ISO time or an age like 30m, 12h, 7d."""
    if value is None:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use an ISO time or an age like 30m, 12h, 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _summary(record: FailedJobRecord) -> dict:
    row = dataclasses.asdict(record)
    del row["payload"], row["traceback"]
    return row


@click.group()
def failed() -> None:
    """Inspect, retry and remove failed jobs."""


@failed.command("list")
@click.option("--queue")
@click.option("--job", "job_name")
@click.option("--since", help="ISO time or age (30m, 12h, 7d).")
@click.option("--limit", type=click.IntRange(min=1), default=50)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_failed(
    app: AppContext,
    queue: str | None,
    job_name: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List failed jobs, newest first."""
    records = app.runtime.failed_store.list(
        queue=queue, job_name=job_name, since=_since(since), limit=limit
    )
    if as_json:
        echo_json([_summary(r) for r in records])
        return
    if not records:
        click.echo("No failed jobs.")
        return
    table = Table("ID", "Failed at", "Queue", "Job", "Exception", "Retried")
    for r in records:
        table.add_row(
            str(r.id),
            f"{r.failed_at:%Y-%m-%d %H:%M:%S}",
            r.queue,
            r.job_name,
            f"{r.exception_class}: {r.message}"[:80],
            "yes" if r.retried_by else "",
        )
    # Piped output gets no terminal width; let the table take what its content needs.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


@failed.command("show")
@click.argument("failed_id")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def show_failed(app: AppContext, failed_id: str, as_json: bool) -> None:
    """Show one failed job with its payload and traceback."""
    record = app.runtime.failed_store.get(failed_id)
    if record is None:
        raise click.ClickException(f"no failed job {failed_id} (see `skyline failed list`)")
    if as_json:
        echo_json(dataclasses.asdict(record))
        return
    for key, value in _summary(record).items():
        click.echo(f"{key:>16}: {value}")
    click.echo(f"\nPayload:\n{record.payload}\n\n{record.traceback}")


@failed.command("retry")
@click.argument("ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Every failed job not yet retried.")
@click.option("--queue", help="Every failed job of this queue not yet retried.")
@pass_app
def retry(app: AppContext, ids: tuple[str, ...], retry_all: bool, queue: str | None) -> None:
    """Queue failed jobs again (attempts reset, new id, linked to the old one)."""
    if ids:
        retry_each(app, list(ids), lambda target: f"no failed job {target}")
        return
    if not retry_all and not queue:
        raise click.UsageError("name failed job IDs, or use --all or --queue QUEUE")
    store, started = app.runtime.failed_store, time.monotonic()
    matching = store.count(queue=queue)
    retried, problems = _retry_pending(app, queue)
    summarise_retries(retried, problems, started, skipped=max(matching - retried - problems, 0))


def _retry_pending(app: AppContext, queue: str | None) -> tuple[int, int]:
    """Every failed job not yet retried, a chunk at a time (see ``retry_pending``); how many
    were retried and how many could not be, each problem named on stderr."""
    chunks = retry_pending(
        app.runtime.dispatcher,
        app.runtime.failed_store,
        queue=queue,
        failed_before=datetime.now(UTC),
    )
    retried = problems = 0
    with progress("Retrying failed jobs") as advance:
        for chunk in chunks:
            for _, error in chunk.refused:
                click.echo(str(error), err=True)
            retried, problems = retried + len(chunk.retried), problems + len(chunk.refused)
            advance(len(chunk.retried) + len(chunk.refused))
    return retried, problems


def retry_each(app: AppContext, targets: list, missing: Callable[[str], str]) -> None:
    """Retry failed jobs by id or uuid, say what became of each, and exit 1 if any could not be."""
    store, started = app.runtime.failed_store, time.monotonic()
    found = (store.get(target) or RetryError(missing(str(target))) for target in targets)
    summarise_retries(*_retry(app, found, total=len(targets)), started)


def _retry(
    app: AppContext,
    records: Iterable[FailedJobRecord | RetryError],
    total: int,
) -> tuple[int, int]:
    """How many were retried and how many could not be; each problem is named on stderr."""
    retried = problems = 0
    with progress("Retrying failed jobs", total) as advance:
        for record in records:
            try:
                if isinstance(record, RetryError):
                    raise record
                new_id = retry_failed(record, app.runtime.dispatcher, app.runtime.failed_store)
            except RetryError as exc:
                click.echo(str(exc), err=True)
                problems += 1
            else:
                click.echo(f"Retried failed job {record.id} as {new_id}.")
                retried += 1
            advance(1)
    return retried, problems


def summarise_retries(retried: int, problems: int, started: float, skipped: int = 0) -> None:
    summary = f"Retried {plural(retried, 'failed job')} in {took(started)}"
    if problems:
        summary += f"; {problems:,} could not be (see above)"
    if skipped:
        summary += f"; {skipped:,} skipped (already retried)"
    click.echo(summary + ".")
    if problems:
        raise SystemExit(1)


@failed.command("forget")
@click.argument("failed_id")
@pass_app
def forget(app: AppContext, failed_id: str) -> None:
    """Delete one failed job."""
    record = app.runtime.failed_store.get(failed_id)
    if record is None or not app.runtime.failed_store.forget(record.id):
        raise click.ClickException(f"no failed job {failed_id}")
    click.echo(f"Forgot failed job {record.id}.")


@failed.command("flush")
@pass_app
def flush(app: AppContext) -> None:
    """Delete every failed job."""
    click.echo(f"Deleted {app.runtime.failed_store.flush()} failed jobs.")


@failed.command("prune")
@click.option("--hours", type=click.IntRange(min=0), default=24 * 7, show_default=True)
@pass_app
def prune(app: AppContext, hours: int) -> None:
    """Delete failed jobs older than N hours."""
    before, started = datetime.now(UTC) - timedelta(hours=hours), time.monotonic()
    with progress("Pruning failed jobs") as advance:
        pruned = app.runtime.failed_store.prune(before, progress=advance)
    click.echo(
        f"Pruned {plural(pruned, 'failed job')} older than {hours_text(hours)} in {took(started)}."
    )
