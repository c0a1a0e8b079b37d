"""``skyline snapshot``: take a metric snapshot now, outside the schedule."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import click

from core.cli.common import AppContext, echo_json, pass_app


@click.command()
@click.option("--json", "as_json", is_flag=True)
@pass_app
def snapshot(app: AppContext, as_json: bool) -> None:
    """Store the figures counted since the last snapshot, per job and per queue."""
    from core.scheduled import ScheduledTasks  # alert channels need not load for `skyline work`

    taken = ScheduledTasks.from_runtime(app.runtime).taker.take(datetime.now(UTC))
    if as_json:
        echo_json([asdict(row) for row in taken])
        return
    for row in taken:
        click.echo(
            f"{row.kind} {row.name}: {row.processed} processed, {row.failed} failed, "
            f"{row.throughput:.1f}/min, runtime {row.runtime_avg_ms:.0f} ms, "
            f"wait p95 {row.wait_p95_ms:.0f} ms"
        )
    jobs = sum(row.kind == "job" for row in taken)
    click.echo(f"Snapshot taken: {jobs} jobs, {len(taken) - jobs} queues.")
