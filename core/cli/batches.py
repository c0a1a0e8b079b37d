"""``skyline batches``: list, inspect, retry, cancel and prune job batches."""

from __future__ import annotations

import dataclasses
import sys
import time
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from core.batch_store import BatchRecord
from core.cli.common import AppContext, echo_json, hours_text, pass_app, plural, progress, took
from core.cli.failed import summarise_retries
from core.retrying import retry_batch_failures


def _summary(record: BatchRecord) -> dict:
    row = dataclasses.asdict(record)
    row.update(
        processed_jobs=record.processed_jobs,
        progress=record.progress,
        finished=record.finished,
        cancelled=record.cancelled,
    )
    del row["options"]
    return row


def _found(app: AppContext, batch_id: str) -> BatchRecord:
    record = app.runtime.dispatcher.workflows.batches.get(batch_id)
    if record is None:
        raise click.ClickException(f"no batch {batch_id} (see `skyline batches list`)")
    return record


@click.group()
def batches() -> None:
    """Inspect and manage job batches."""


@batches.command("list")
@click.option("--search", help="Part of a batch name, or the start of its id.")
@click.option("--limit", type=click.IntRange(min=1), default=50)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_batches(app: AppContext, search: str | None, limit: int, as_json: bool) -> None:
    """List batches, newest first."""
    app.runtime.ensure_schema()
    records = app.runtime.dispatcher.workflows.batches.list(limit=limit, search=search)
    if as_json:
        echo_json([_summary(r) for r in records])
        return
    if not records:
        click.echo("No batches.")
        return
    table = Table("ID", "Name", "Progress", "Jobs", "Failed", "Created", "State")
    for r in records:
        state = "cancelled" if r.cancelled else "finished" if r.finished else "running"
        table.add_row(
            r.id,
            r.name,
            f"{r.progress}%",
            f"{r.processed_jobs}/{r.total_jobs}",
            str(r.failed_jobs),
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            state,
        )
    Console(width=None if sys.stdout.isatty() else 240).print(table)


@batches.command("show")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def show(app: AppContext, batch_id: str, as_json: bool) -> None:
    """One batch, with its failed job ids."""
    app.runtime.ensure_schema()
    record = _found(app, batch_id)
    failed = app.runtime.dispatcher.workflows.batches.failed_job_ids(batch_id)
    details = {**_summary(record), "failed_job_ids": failed}
    if as_json:
        echo_json(details)
        return
    for key, value in details.items():
        click.echo(f"{key:>16}: {value}")


@batches.command("retry")
@click.argument("batch_id")
@pass_app
def retry(app: AppContext, batch_id: str) -> None:
    """Retry the batch's failed jobs from the failed store."""
    app.runtime.ensure_schema()
    _found(app, batch_id)
    started, runtime = time.monotonic(), app.runtime
    failed_ids = runtime.dispatcher.workflows.batches.failed_job_ids(batch_id)
    with progress("Retrying the batch's failed jobs", count=False):
        done = retry_batch_failures(failed_ids, runtime.dispatcher, runtime.failed_store)
    for job_id in done.missing:
        click.echo(f"job {job_id} is not in the failed store", err=True)
    for problem in done.problems:
        click.echo(problem, err=True)
    troubles = len(done.missing) + len(done.problems)
    summarise_retries(len(done.retried), troubles, started, skipped=len(done.in_flight))


@batches.command("cancel")
@click.argument("batch_id")
@pass_app
def cancel(app: AppContext, batch_id: str) -> None:
    """Cancel a batch: its waiting jobs skip when they use SkipIfBatchCancelled."""
    app.runtime.ensure_schema()
    _found(app, batch_id)
    app.runtime.dispatcher.workflows.batches.cancel(batch_id)
    click.echo(f"Cancelled batch {batch_id}.")


@batches.command("prune")
@click.option(
    "--hours",
    type=click.IntRange(min=0),
    default=24,
    show_default=True,
    help="Finished batches older than this.",
)
@click.option("--unfinished-hours", type=click.IntRange(min=0), help="Unfinished ones too.")
@click.option("--cancelled-hours", type=click.IntRange(min=0), help="Cancelled ones too.")
@pass_app
def prune(
    app: AppContext, hours: int, unfinished_hours: int | None, cancelled_hours: int | None
) -> None:
    """Delete old batch records."""
    app.runtime.ensure_schema()
    now, started = datetime.now(UTC), time.monotonic()

    def ago(h: int | None) -> datetime | None:
        return None if h is None else now - timedelta(hours=h)

    with progress("Pruning batches") as advance:
        pruned = app.runtime.dispatcher.workflows.batches.prune(
            finished_before=now - timedelta(hours=hours),
            unfinished_before=ago(unfinished_hours),
            cancelled_before=ago(cancelled_hours),
            progress=advance,
        )
    ages = [f"finished over {hours_text(hours)} ago"]
    if unfinished_hours is not None:
        ages.append(f"unfinished over {hours_text(unfinished_hours)} old")
    if cancelled_hours is not None:
        ages.append(f"cancelled over {hours_text(cancelled_hours)} ago")
    batches = plural(pruned, "batch", "batches")
    click.echo(f"Pruned {batches} ({', '.join(ages)}) in {took(started)}.")
