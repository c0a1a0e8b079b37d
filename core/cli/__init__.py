"""The ``skyline`` command."""

from __future__ import annotations

import logging

import click

from core.cli.batches import batches
from core.cli.common import AppContext, fail_cleanly, set_verbosity
from core.cli.failed import failed
from core.cli.queues import queue
from core.cli.setup import demo, down, migrate, up
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
    set_verbosity(verbose)
    ctx.obj = AppContext(config_file)


for command in (work, failed, batches, queue, migrate, up, down, demo):
    cli.add_command(command)


def main() -> None:
    cli.main(prog_name="skyline")
