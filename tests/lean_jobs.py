"""An app that imports nothing but Skyline: tests/jobs.py loads SQLAlchemy for its models,
which would hide whether the worker loads it."""

from __future__ import annotations

import sys

from core import job
from tests.run_log import record


@job
def report_modules(label: str) -> None:
    record("modules", label=label, sqlalchemy="sqlalchemy" in sys.modules)


@job
def fails() -> None:
    raise ValueError("fails on purpose")
