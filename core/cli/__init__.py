"""The ``skyline`` command."""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points

import click

from core.cli.batches import batches
from core.cli.common import VERBOSITY_VARIABLE, AppContext, fail_cleanly, set_verbosity
from core.cli.failed import failed
from core.cli.queues import queue
from core.cli.setup import demo, down, migrate, up
from core.cli.snapshots import snapshot
from core.cli.work import work


class SkylineGroup(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        with fail_cleanly():
            return super().invoke(ctx)


@click.group(cls=SkylineGroup)
@click.option("--config", "config_file", envvar="SKYLINE_CONFIG", help="Path to skyline.toml.")
@click.option("-v", "--verbose", count=True, help="-v: one line per job; -vv: debug.")
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, verbose: int) -> None:
    """Skyline: a Redis job queue with supervisor pools and an ops dashboard."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s")
    set_verbosity(verbose or int(os.environ.get(VERBOSITY_VARIABLE) or 0))
    ctx.obj = AppContext(config_file)


for command in (work, failed, batches, queue, migrate, up, down, demo, snapshot):
    cli.add_command(command)


def _add_extensions() -> None:
    """Commands of other packages (the balancer's ``start``, ``pause``...), found by entry
    point so that core never imports them."""
    for entry in entry_points(group="skyline.commands"):
        try:
            loaded = entry.load()
        except Exception as exc:  # one broken extension must not take `skyline work` down
            logging.getLogger("skyline").warning("commands %s not loaded: %s", entry.value, exc)
            continue
        for command in loaded if isinstance(loaded, list) else [loaded]:
            cli.add_command(command)


_add_extensions()


def main() -> None:
    cli.main(prog_name="skyline")
