"""The base of every settings table, shared so that tables can live in their own modules."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """A setting is wrong; the message is one line naming file, key and fix."""


class Strict(BaseModel):
    """Unknown keys are errors (a typo must not be ignored) and settings never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
