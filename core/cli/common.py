"""What every command shares: settings loaded once, one-line errors, JSON output."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

import click

from core.registry import AppImportError, import_app
from core.runtime import Runtime
from core.settings import ConfigError, Settings, load_settings


class AppContext:
    def __init__(self, config_file: str | None) -> None:
        self.config_file = config_file
        self.overrides: dict[str, Any] = {}

    @cached_property
    def settings(self) -> Settings:
        with fail_cleanly():
            return load_settings(self.config_file, **self.overrides)

    @cached_property
    def runtime(self) -> Runtime:
        with fail_cleanly():
            import_app(self.settings.app)
            return Runtime(self.settings)


@contextlib.contextmanager
def fail_cleanly() -> Iterator[None]:
    """Configuration and connection problems end the command with one line, not a traceback."""
    try:
        yield
    except (ConfigError, AppImportError) as exc:
        raise click.ClickException(str(exc)) from None


pass_app = click.make_pass_decorator(AppContext)
VERBOSITY_VARIABLE = "SKYLINE_VERBOSE"


def set_verbosity(count: int) -> None:
    """0: warnings; 1 (-v): a line per job; 2 (-vv): debug, including Alembic's own lines."""
    os.environ[VERBOSITY_VARIABLE] = str(count)  # workers started from here say as much
    level = {0: logging.WARNING, 1: logging.INFO}.get(count, logging.DEBUG)
    logging.getLogger().setLevel(level)
    logging.getLogger("alembic").setLevel(logging.DEBUG if count > 1 else logging.WARNING)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@contextlib.contextmanager
def progress(
    description: str, total: int | None = None, *, count: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)`` for long work: a bar (a running count when the total is unknown;
    a spinner alone with ``count=False``) on stderr while it runs. Only when stderr is a
    terminal, so that piped output, logs and tests get nothing but the summary line the
    command prints at the end."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console  # not at the top: worker processes never draw a bar
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    columns = [SpinnerColumn(), TextColumn(description)]
    if count:
        columns.append(BarColumn())
        columns.append(MofNCompleteColumn() if total else TextColumn("{task.completed:,}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def took(started: float) -> str:
    """Seconds since ``started`` (a ``time.monotonic()``) for a summary line: "3.2 s"."""
    return f"{time.monotonic() - started:.1f} s"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 failed job", "1,204 failed jobs": thousands separated, as summaries read."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def hours_text(hours: int) -> str:
    """An age given in hours as a summary reads it: "7 days", "36 hours"."""
    if hours and hours % 24 == 0:
        return plural(hours // 24, "day")
    return plural(hours, "hour")
