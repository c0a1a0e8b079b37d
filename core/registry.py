"""The registry of job definitions, filled when the application's modules are imported.

A payload names its job by registered name; workers resolve names here and
nowhere else, so nothing read from Redis can make a worker import a module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.job import JobDefinition


class AppImportError(ImportError):
    """An application module named in the settings cannot be imported."""


class UnknownJobError(LookupError):
    """A payload names a job this application never registered."""


class JobRegistry:
    def __init__(self) -> None:
        self._definitions: dict[str, JobDefinition] = {}

    def add(self, definition: JobDefinition) -> None:
        self._definitions[definition.name] = definition

    def get(self, name: str) -> JobDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise UnknownJobError(
                f"no job named {name!r} is registered: add the module that defines it to the "
                "app setting (skyline.toml `app = [...]`, SKYLINE_APP or --app)"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._definitions)


registry = JobRegistry()


def import_app(modules: list[str]) -> None:
    """Import the application's job modules, named by trusted configuration."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                raise AppImportError(
                    f"cannot import application module {module!r}: check the app setting "
                    "(skyline.toml `app`, SKYLINE_APP or --app) and that it is on PYTHONPATH"
                ) from None
            raise AppImportError(
                f"application module {module!r} imports {exc.name!r}, which is not installed"
            ) from None
