"""``skyline queue``: sizes, clearing and monitoring."""

from __future__ import annotations

import click

from core.cli.common import AppContext, echo_json, pass_app
from core.events import QueueBusy, events


@click.group()
def queue() -> None:
    """Look at and manage queues."""


@queue.command("size")
@click.argument("queues", required=False, default="default")
@click.option("--connection")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def size(app: AppContext, queues: str, connection: str | None, as_json: bool) -> None:
    """Jobs per queue: ready, delayed and reserved."""
    redis_queue = app.runtime.queue(connection)
    sizes = {name: redis_queue.sizes(name) for name in queues.split(",")}
    if as_json:
        echo_json(sizes)
        return
    for name, parts in sizes.items():
        total = sum(parts.values())
        detail = ", ".join(f"{count} {part}" for part, count in parts.items())
        click.echo(f"{name}: {total} ({detail})")


@queue.command("clear")
@click.argument("name")
@click.option("--connection")
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def clear(app: AppContext, name: str, connection: str | None, force: bool) -> None:
    """Delete every job on a queue (ready, delayed and reserved)."""
    if not force:
        click.confirm(f"Delete every job on {name!r}?", abort=True)
    click.echo(f"Cleared {app.runtime.queue(connection).clear(name)} jobs from {name}.")


@queue.command("monitor")
@click.argument("queues", nargs=-1, required=True)
@click.option("--max", "maximum", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--connection")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def monitor(
    app: AppContext, queues: tuple[str, ...], maximum: int, connection: str | None, as_json: bool
) -> None:
    """Exit 1 (and emit QueueBusy) when a queue holds more than --max jobs; for cron."""
    redis_queue = app.runtime.queue(connection)
    names = [n for arg in queues for n in arg.split(",")]
    sizes = {name: redis_queue.size(name) for name in names}
    busy = {name: count for name, count in sizes.items() if count > maximum}
    for name, count in busy.items():
        events.emit(QueueBusy(connection or app.settings.default_connection, name, count))
    if as_json:
        echo_json({"sizes": sizes, "over": busy, "max": maximum})
    else:
        for name, count in sizes.items():
            click.echo(f"{name}: {count}{'  OVER ' + str(maximum) if name in busy else ''}")
    if busy:
        raise SystemExit(1)
