"""What every command shares: settings loaded once, one-line errors, JSON output."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
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
