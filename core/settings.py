"""Settings: environment variables over ``skyline.toml`` over defaults.

Every error names the file, the key and the fix in one line, because a worker
that will not start should say why without a traceback.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.claude.settings import ClaudeSettings
from core.config_model import ConfigError, Strict
from core.dashboard_settings import DashboardSettings

DEFAULT_CONFIG_FILE = "skyline.toml"
DEFAULT_STATE_DIR = ".skyline"
MIN_RETRY_AFTER_S = 3

ENVIRONMENT = {
    "REDIS_URL": "redis_url",
    "DATABASE_URL": "database_url",
    "SKYLINE_SECRET": "secret",
    "SKYLINE_APP": "app",
    "SKYLINE_ENV": "env",
    "SKYLINE_PREFIX": "prefix",
    "SKYLINE_STATE_DIR": "state_dir",
}
# Secrets of nested tables; the SMTP login applies only where an [alerts.email] table exists.
NESTED_ENVIRONMENT = {
    "SKYLINE_WEBHOOK_SECRET": ("alerts", "webhook_secret"),
    "SKYLINE_SLACK_WEBHOOK_URL": ("alerts", "slack_webhook_url"),
    "SKYLINE_SMTP_USER": ("alerts", "email", "user"),
    "SKYLINE_SMTP_PASSWORD": ("alerts", "email", "password"),
    "SKYLINE_METRICS_TOKEN": ("dashboard", "metrics_token"),
    "ANTHROPIC_API_KEY": ("claude", "api_key"),
    "ANTHROPIC_BASE_URL": ("claude", "base_url"),
    "SKYLINE_CLAUDE_WEBHOOK_SECRET": ("claude", "webhook_secret"),
}
LIST_VARIABLES = {"secret", "app"}
SENSITIVE_KEYS = {
    "secret",
    "alerts",  # its checks see webhook URLs and secrets
    "redis_url",
    "database_url",
    "url",
    "webhook_url",
    "webhook_secret",
    "slack_webhook_url",
    "password",
    "metrics_token",
    "api_key",
}
DEFAULT_SNAPSHOT_INTERVAL_S = 300
DEFAULT_RETENTION_DAYS = 7
DEFAULT_ALERT_COOLDOWN_S = 300
DEFAULT_ALERT_CHECK_INTERVAL_S = 60


class ConnectionSettings(Strict):
    driver: Literal["redis", "sync"] = "redis"
    url: str | None = None
    retry_after: int = Field(default=30, ge=MIN_RETRY_AFTER_S)
    worker_lost_limit: int = Field(default=3, ge=1)
    after_commit: bool = False


class WorkerSettings(Strict):
    """Defaults for ``skyline work`` options; flags override them."""

    timeout: int = Field(default=60, ge=0)
    tries: int = Field(default=1, ge=0)
    backoff: int | list[int] = 0
    sleep: float = Field(default=3.0, gt=0)
    memory: int = Field(default=256, ge=0)
    concurrency: int = Field(default=1, ge=1)


class MetricsSettings(Strict):
    snapshot_interval: int = Field(default=DEFAULT_SNAPSHOT_INTERVAL_S, ge=1)  # seconds
    retention_days: float = Field(default=DEFAULT_RETENTION_DAYS, gt=0)


class EmailSettings(Strict):
    model_config = ConfigDict(populate_by_name=True)

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    user: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout: float = Field(default=10.0, gt=0)  # seconds


class AlertSettings(Strict):
    """Seconds throughout; ``waits`` maps ``"connection:queue"`` to a wait threshold."""

    waits: dict[str, float] = {}
    cooldown: int = Field(default=DEFAULT_ALERT_COOLDOWN_S, ge=1)
    check_interval: int = Field(default=DEFAULT_ALERT_CHECK_INTERVAL_S, ge=1)
    failed_jobs: bool = False
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    slack_webhook_url: SecretStr | None = None
    email: EmailSettings | None = None
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("waits")
    @classmethod
    def _waits_name_a_queue(cls, waits: dict[str, float]) -> dict[str, float]:
        for name, threshold in waits.items():
            connection, _, queue = name.partition(":")
            if not connection or not queue:
                raise ValueError(f'{name!r} is not "connection:queue" (e.g. "redis:default")')
            if threshold <= 0:
                raise ValueError(f"the threshold of {name!r} must be more than 0 seconds")
        return waits

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> AlertSettings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(
                "webhook_url needs webhook_secret to sign alerts "
                "(set it under [alerts] or export SKYLINE_WEBHOOK_SECRET)"
            )
        return self

    def thresholds(self) -> list[tuple[str, str, float]]:
        """(connection, queue, seconds) for every queue with a wait threshold."""
        return [(*name.split(":", 1), seconds) for name, seconds in self.waits.items()]

    @property
    def has_channels(self) -> bool:
        return bool(self.webhook_url or self.slack_webhook_url or self.email)


HOUR_S = 3600
WEEK_S = 7 * 24 * HOUR_S


class RecordSettings(Strict):
    """Job records and metrics (``[records]``): how long each index keeps a job, in seconds."""

    enabled: bool = True
    recent_s: int = Field(default=HOUR_S, ge=1)
    pending_s: int = Field(default=HOUR_S, ge=1)
    completed_s: int = Field(default=HOUR_S, ge=1)
    silenced_s: int = Field(default=HOUR_S, ge=1)
    recent_failed_s: int = Field(default=WEEK_S, ge=1)
    failed_s: int = Field(default=WEEK_S, ge=1)
    monitored_s: int = Field(default=WEEK_S, ge=1)
    silenced: list[str] = []  # job names recorded as silenced instead of completed
    silenced_tags: list[str] = []


def _default_connections() -> dict[str, ConnectionSettings]:
    return {"redis": ConnectionSettings(), "sync": ConnectionSettings(driver="sync")}


class Settings(Strict):
    app: list[str] = []
    env: str = "local"
    prefix: str = "skyline:"
    redis_url: str | None = None
    database_url: str | None = None
    secret: list[str] = []
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    default_connection: str = "redis"
    connections: dict[str, ConnectionSettings] = Field(default_factory=_default_connections)
    worker: WorkerSettings = WorkerSettings()
    records: RecordSettings = RecordSettings()
    # Supervisor pools, validated by balancer/config.py: core only carries the tables.
    defaults: dict[str, dict[str, Any]] = {}
    environments: dict[str, dict[str, dict[str, Any]]] = {}
    fast_termination: bool = False
    master_memory: int = Field(default=256, ge=1)
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    dashboard: DashboardSettings = DashboardSettings()
    claude: ClaudeSettings = ClaudeSettings()

    @field_validator("secret")
    @classmethod
    def _secrets_are_long(cls, keys: list[str]) -> list[str]:
        if any(len(key) < 16 for key in keys):
            raise ValueError("each secret must be at least 16 characters")
        return keys

    @property
    def embedded(self) -> bool:
        """True when Skyline runs its own Redis because none was configured."""
        return self.redis_url is None

    def connection(self, name: str | None) -> ConnectionSettings:
        name = name or self.default_connection
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections))
            raise ConfigError(
                f"unknown queue connection {name!r}; known connections: {known} "
                "(declare it under [connections.NAME] in skyline.toml)"
            ) from None

    def signing_keys(self) -> list[str]:
        """Keys that verify payloads; the first one signs."""
        if self.secret:
            return list(self.secret)
        if not self.embedded:
            raise ConfigError(
                "SKYLINE_SECRET is not set: with a shared Redis every producer and worker must "
                "sign with the same secret (export SKYLINE_SECRET=<32+ random characters>)"
            )
        return [_state_secret(self.state_dir)]

    def sql_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.state_dir / 'skyline.db').resolve()}"


def _state_secret(state_dir: Path) -> str:
    """The embedded default's secret, created once, readable only by its owner."""
    path = state_dir / "secret"
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the settings the way every command does."""
    environ = os.environ if environ is None else environ
    path = Path(config_file or environ.get("SKYLINE_CONFIG") or DEFAULT_CONFIG_FILE)
    explicit = bool(config_file or environ.get("SKYLINE_CONFIG"))
    data = _read_toml(path, required=explicit)
    from_environment = _from_environment(environ)
    data.update(from_environment)
    _nest_environment(data, environ)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(data.get("connections"), dict):
        data["connections"] = {**_default_connections(), **data["connections"]}
    try:
        settings = Settings(**data)
        settings.connection(settings.default_connection)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc, set(from_environment))) from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: default_connection: {exc}") from None
    return settings


def _read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise ConfigError(f"{path}: config file not found (check --config / SKYLINE_CONFIG)")
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for variable, key in ENVIRONMENT.items():
        value = environ.get(variable)
        if value:
            values[key] = (
                [v.strip() for v in value.split(",") if v.strip()]
                if (key in LIST_VARIABLES)
                else value
            )
    return values


def _nest_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for variable, (*tables, key) in NESTED_ENVIRONMENT.items():
        value = environ.get(variable)
        table = _table(data, tables)
        if value and table is not None:
            table[key] = value


def _table(data: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
    """The nested table, made where missing; None where TOML holds something else, or
    for the email table, which a login alone does not create (it needs a server)."""
    table = data
    for name in names:
        if name not in table and name != "email":
            table[name] = {}
        table = table.get(name)
        if not isinstance(table, dict):
            return None
    return table


def _describe(path: Path, exc: ValidationError, from_environment: set[str]) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    key = loc[-1] if loc else "?"
    variable = next((v for v, k in ENVIRONMENT.items() if loc and k == loc[0]), None)
    if loc and loc[0] in from_environment and variable:
        source = f"environment variable {variable}"
    else:
        table = f"[{'.'.join(loc[:-1])}] " if len(loc) > 1 else ""
        source = f"{path}: {table}{key}"
    if error["type"] == "extra_forbidden":
        return f"{source}: unknown key (remove it, or check its spelling in README)"
    shown = "" if SENSITIVE_KEYS & set(loc) else f" (got {error.get('input')!r})"
    return f"{source}: {error['msg']}{shown}"
