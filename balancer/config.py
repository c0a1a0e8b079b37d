"""Declarative pool config: the supervisors an environment runs, and how each one is sized.

``skyline.toml`` holds ``[defaults.<supervisor>]`` and ``[environments.<env>.<supervisor>]``
tables. Core's settings carry them raw; this module merges and validates them, and every
mistake becomes one line naming the file, the table, the key and the fix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from core.settings import DEFAULT_CONFIG_FILE, ConfigError, Settings

BALANCE_MODES = ("off", "simple", "auto")
STRATEGIES = ("time", "size")
DEFAULT_MAX_PROCESSES = 10
DEFAULT_BALANCE_COOLDOWN_S = 3.0
# TOML bare keys; a supervisor name must be one, since it names tables and Redis records.
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# `skyline work` takes these as flags; `nice` is applied by the pool that spawns the process.
WORKER_FLAGS = ("tries", "timeout", "backoff", "max_time", "max_jobs", "memory", "sleep", "rest")

QueueName = Annotated[str, StringConstraints(pattern=r"^[^\s,{}]+$")]
Seconds = Annotated[int, Field(ge=0)]
Positive = Annotated[float, Field(gt=0)]


class SupervisorConfig(BaseModel):
    """One supervisor's pools. Worker options left at None use the worker's own defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    connection: str = "redis"  # load_pools puts settings.default_connection here
    queues: list[QueueName] = Field(min_length=1)
    balance: Literal["off", "simple", "auto"] = "auto"
    auto_scaling_strategy: Literal["time", "size"] = "time"
    processes: int = Field(default=1, ge=1)
    min_processes: int = Field(default=1, ge=0)
    max_processes: int = Field(default=DEFAULT_MAX_PROCESSES, ge=1)
    balance_max_shift: int = Field(default=1, ge=1)
    balance_cooldown: float = Field(default=DEFAULT_BALANCE_COOLDOWN_S, ge=0)
    concurrency: int = Field(default=1, ge=1)
    tries: int | None = Field(default=None, ge=0)
    timeout: float | None = Field(default=None, ge=0)
    backoff: Seconds | Annotated[list[Seconds], Field(min_length=1)] | None = None
    max_time: float | None = Field(default=None, ge=0)
    max_jobs: int | None = Field(default=None, ge=0)
    memory: int | None = Field(default=None, ge=0)
    sleep: float | None = Field(default=None, ge=0.01)
    rest: float | None = Field(default=None, ge=0)
    nice: int | None = Field(default=None, ge=0, le=19)
    force: bool | None = None
    weights: dict[str, Positive] = {}
    target_wait: dict[str, Positive] = {}

    @model_validator(mode="after")
    def _consistent(self) -> SupervisorConfig:
        for check in (_duplicate_queue, _pool_too_small, _unknown_queue):
            problem = check(self)
            if problem:
                key, message = problem
                context = {"key": key, "message": message}
                raise PydanticCustomError("pool_rule", "{message}", context)
        return self


def _duplicate_queue(config: SupervisorConfig) -> tuple[str, str] | None:
    seen: set[str] = set()
    for queue in config.queues:
        if queue in seen:
            return "queues", f"lists {queue!r} twice (list each queue once, in priority order)"
        seen.add(queue)
    return None


def _pool_too_small(config: SupervisorConfig) -> tuple[str, str] | None:
    count = len(config.queues)
    needed = config.min_processes * count
    if config.balance == "auto" and needed > config.max_processes:
        return "min_processes", (
            f"{config.min_processes} per queue x {count} queues = {needed} exceeds "
            f"max_processes = {config.max_processes} "
            f"(lower min_processes, or raise max_processes to at least {needed})"
        )
    if config.balance == "simple" and config.processes < count:
        return "processes", (
            f"{config.processes} processes split evenly over {count} queues leaves a queue "
            f'without a worker (set processes to at least {count}, or use balance = "off")'
        )
    return None


def _unknown_queue(config: SupervisorConfig) -> tuple[str, str] | None:
    for key in ("weights", "target_wait"):
        for queue in getattr(config, key):
            if queue not in config.queues:
                known = ", ".join(config.queues)
                return f"{key}.{queue}", (
                    f"{queue!r} is not one of this supervisor's queues ({known}); "
                    "fix the name or add it to queues"
                )
    return None


class PoolConfig(BaseModel):
    """The effective pool config of one environment, as `skyline start` runs it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: str
    fast_termination: bool
    master_memory: int
    supervisors: dict[str, SupervisorConfig]


def load_pool_config(
    settings: Settings, env: str | None = None, source: str = DEFAULT_CONFIG_FILE
) -> PoolConfig:
    env = env or settings.env
    supervisors = {}
    for name, table in _environment_tables(settings, env, source).items():
        origin = _Origin(source, env, name, settings.defaults.get(name, {}), table)
        supervisors[name] = _supervisor(settings, origin)
    return PoolConfig(
        environment=env,
        fast_termination=settings.fast_termination,
        master_memory=settings.master_memory,
        supervisors=supervisors,
    )


def load_pools(
    settings: Settings, env: str | None = None, source: str = DEFAULT_CONFIG_FILE
) -> dict[str, SupervisorConfig]:
    """The supervisors of ``env`` (default: ``settings.env``, from SKYLINE_ENV), by name.

    Horizon's semantics: an environment lists the supervisors it runs. Each one is its
    ``[defaults.<name>]`` table overlaid key by key with ``[environments.<env>.<name>]``; a
    supervisor that only has a defaults table is not started anywhere. ``source`` is the
    config file's path, used in error messages only.
    """
    return load_pool_config(settings, env, source).supervisors


DEFAULT_MAX_PROCESSES = 4


def default_supervisor(settings: Settings, queues: Sequence[str]) -> SupervisorConfig:
    """The pool `skyline up` runs when the environment declares none: auto-balanced, 1 to 4."""
    return SupervisorConfig.model_validate(
        {
            "connection": settings.default_connection,
            "queues": list(queues),
            "max_processes": max(DEFAULT_MAX_PROCESSES, len(queues)),
            "concurrency": settings.worker.concurrency,
        }
    )


def worker_args(config: SupervisorConfig, queues: Sequence[str] | None = None) -> list[str]:
    """The ``skyline work`` arguments for one worker of ``config`` serving ``queues``.

    Only options that are set appear, so the worker's defaults (``[worker]``) apply to the
    rest. ``nice`` is not a worker flag: whoever spawns the process applies it. ``force``
    is carried for Horizon configs and has no effect: Skyline has no maintenance mode.
    """
    queues = list(queues or config.queues)
    strangers = [queue for queue in queues if queue not in config.queues]
    if strangers:
        raise ValueError(f"queues {strangers} are not in this supervisor's {config.queues}")
    args = ["work", ",".join(queues), "--connection", config.connection]
    args += ["--concurrency", str(config.concurrency)]
    for key in WORKER_FLAGS:
        value = getattr(config, key)
        if value is not None:
            args += [f"--{key.replace('_', '-')}", _text(value)]
    return args


def _text(value: float | list[int]) -> str:
    if isinstance(value, list):
        return ",".join(str(part) for part in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def toml_key(name: str) -> str:
    """A table or key name as TOML spells it: bare when it can be, quoted otherwise."""
    return name if BARE_KEY.fullmatch(name) else toml_string(name)


def toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else _escape(c) for c in escaped) + '"'


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _environment_tables(settings: Settings, env: str, source: str) -> dict[str, dict[str, Any]]:
    tables = settings.environments.get(env)
    if tables:
        return tables
    known = ", ".join(sorted(name for name, t in settings.environments.items() if t)) or "none"
    state = "has no supervisors" if env in settings.environments else "is not declared"
    raise ConfigError(
        f"{source}: [environments.{toml_key(env)}]: environment {env!r} (SKYLINE_ENV) {state}; "
        f"known environments: {known} (set SKYLINE_ENV to one of them, or add "
        f"[environments.{toml_key(env)}.<supervisor>] with queues = [...]; a [defaults.*] "
        "table alone starts nothing)"
    )


@dataclass(frozen=True)
class _Origin:
    """Where a supervisor's keys came from, so an error names the table that set the key."""

    source: str
    env: str
    name: str
    defaults: Mapping[str, Any]
    overrides: Mapping[str, Any]

    def table(self, key: str) -> str:
        field = key.split(".")[0]
        if field in self.defaults and field not in self.overrides:
            return f"[defaults.{toml_key(self.name)}]"
        return f"[environments.{toml_key(self.env)}.{toml_key(self.name)}]"

    def error(self, key: str, problem: str) -> ConfigError:
        where = f"{self.table(key)} {key}" if key else self.table(key)
        return ConfigError(f"{self.source}: {where}: {problem}")


def _supervisor(settings: Settings, origin: _Origin) -> SupervisorConfig:
    if not BARE_KEY.fullmatch(origin.name):
        raise origin.error("", "a supervisor name may use only letters, digits, - and _")
    data = {
        "connection": settings.default_connection,
        "concurrency": settings.worker.concurrency,
        **origin.defaults,
        **origin.overrides,
    }
    try:
        config = SupervisorConfig.model_validate(data)
    except ValidationError as exc:
        raise origin.error(*_describe(exc.errors()[0])) from None
    connection = settings.connections.get(config.connection)
    if connection is None:
        known = ", ".join(sorted(settings.connections))
        raise origin.error(
            "connection",
            f"unknown connection {config.connection!r}; known connections: {known} "
            "(fix the name, or declare it under [connections.NAME])",
        )
    if connection.driver != "redis":
        raise origin.error(
            "connection",
            f"{config.connection!r} is a {connection.driver} connection, and workers need a "
            "Redis one (name a Redis connection here)",
        )
    return config


EXPECTED = {
    "connection": "a connection name (a string)",
    "queues": 'a list of queue names, highest priority first, like ["high", "default"]',
    "backoff": "seconds (0 or more), or a list of them like [10, 60]",
    "force": "true or false",
    "weights": "a table of queue = weight, like { emails = 2.0 }",
    "target_wait": "a table of queue = seconds, like { emails = 30 }",
}
CHOICES = {"balance": BALANCE_MODES, "auto_scaling_strategy": STRATEGIES}
BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("greater than", "gt"),
    "less_than_equal": ("at most", "le"),
}


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """(key, problem) for the first thing pydantic found wrong."""
    loc = [str(part) for part in error["loc"]]
    field = loc[0] if loc else ""
    kind = error["type"]
    if kind == "pool_rule":
        return error["ctx"]["key"], error["ctx"]["message"]
    key = f"{field}.{loc[1]}" if field in ("weights", "target_wait") and len(loc) > 1 else field
    if kind == "extra_forbidden":
        return key, _unknown_key(field)
    if kind == "missing":
        return key, f"is required (add {key} = ..., {EXPECTED.get(key, 'see README')})"
    return key, f"{_what(kind, error.get('ctx', {}), field, loc)} (got {error['input']!r})"


def _what(kind: str, ctx: dict[str, Any], field: str, loc: list[str]) -> str:
    if field in CHOICES:
        return f"must be one of {', '.join(CHOICES[field])}"
    if field == "backoff":
        return f"must be {EXPECTED['backoff']}"
    if kind in BOUNDS:
        words, name = BOUNDS[kind]
        return f"must be {words} {_text(ctx[name])}"
    if kind == "too_short":
        return f"must not be empty: {EXPECTED[field]}"
    if kind == "string_pattern_mismatch":
        return "a queue name cannot contain spaces, commas or braces"
    if len(loc) > 1:
        return "must be a queue name (a string)" if field == "queues" else "must be a number"
    if field in EXPECTED:
        return f"must be {EXPECTED[field]}"
    whole = SupervisorConfig.model_fields[field].annotation in (int, int | None)
    return "must be a whole number" if whole else "must be a number"


def _unknown_key(field: str) -> str:
    close = difflib.get_close_matches(field, list(SupervisorConfig.model_fields), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "remove it, or see README for the keys"
    return f"unknown key ({hint})"
