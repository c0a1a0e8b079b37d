"""The ``skyline`` command."""

from __future__ import annotations

import functools
import importlib
import logging
import os
from importlib.metadata import entry_points

import click

from core.cli.common import VERBOSITY_VARIABLE, AppContext, fail_cleanly, set_verbosity

BUILT_IN = {  # command -> "module:attribute", imported only when that command runs
    "work": "core.cli.work:work",
    "failed": "core.cli.failed:failed",
    "batches": "core.cli.batches:batches",
    "queue": "core.cli.queues:queue",
    "migrate": "core.cli.setup:migrate",
    "up": "core.cli.setup:up",
    "down": "core.cli.setup:down",
    "demo": "core.cli.setup:demo",
    "snapshot": "core.cli.snapshots:snapshot",
}


class SkylineGroup(click.Group):
    """Loads a command's module when the command runs: every worker process starts as
    ``skyline work``, and should not carry the dashboard, the balancer and the table
    printer in its memory."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        _add_extensions(self)
        return sorted({*BUILT_IN, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in BUILT_IN:
            module, attribute = BUILT_IN[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        _add_extensions(self)
        return self.commands.get(name)

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


@functools.cache
def _add_extensions(group: click.Group) -> None:
    """Commands of other packages (the balancer's ``start``, ``pause``...), found by entry
    point so that core never imports them."""
    for entry in entry_points(group="skyline.commands"):
        try:
            loaded = entry.load()
        except Exception as exc:  # one broken extension must not take `skyline work` down
            logging.getLogger("skyline").warning("commands %s not loaded: %s", entry.value, exc)
            continue
        for command in loaded if isinstance(loaded, list) else [loaded]:
            group.add_command(command)


def main() -> None:
    cli.main(prog_name="skyline")
