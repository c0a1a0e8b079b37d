"""The ``[claude]`` table of ``skyline.toml``: the API, the allowed models, retries, caching.

Prices are USD per million tokens and limits are per minute, as Anthropic publishes them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from core.config_model import Strict

DEFAULT_MODEL = "claude-sonnet-4-6"
# Anthropic prices prompt-cache writes (5-minute) and reads relative to input tokens.
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
PRIORITIES = ("high", "normal", "low")


class ModelSettings(Strict):
    """One allowed model. Limits of None leave that budget unlimited (set your tier's)."""

    input_usd_per_mtok: float = Field(ge=0)
    output_usd_per_mtok: float = Field(ge=0)
    cache_write_usd_per_mtok: float = Field(ge=0)
    cache_read_usd_per_mtok: float = Field(ge=0)
    requests_per_minute: int | None = Field(default=None, ge=1)
    input_tokens_per_minute: int | None = Field(default=None, ge=1)
    output_tokens_per_minute: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _cache_prices_follow_input(cls, data: Any) -> Any:
        """Cache prices may be left out: they default to Anthropic's ratios to the input price."""
        price = data.get("input_usd_per_mtok") if isinstance(data, dict) else None
        if not isinstance(price, int | float):
            return data
        defaults = {
            "cache_write_usd_per_mtok": price * CACHE_WRITE_FACTOR,
            "cache_read_usd_per_mtok": price * CACHE_READ_FACTOR,
        }
        return defaults | data


def _default_models() -> dict[str, ModelSettings]:
    prices = {
        "claude-opus-4-7": (5.0, 25.0),
        "claude-sonnet-4-6": (3.0, 15.0),
        "claude-haiku-4-5": (1.0, 5.0),
    }
    return {
        name: ModelSettings(input_usd_per_mtok=given, output_usd_per_mtok=output)
        for name, (given, output) in prices.items()
    }


class ClaudeSettings(Strict):
    api_key: SecretStr | None = None  # or ANTHROPIC_API_KEY
    base_url: str | None = None  # or ANTHROPIC_BASE_URL; the SDK's default otherwise
    timeout_s: float = Field(default=600, gt=0)  # one API call; long generations take minutes
    models: dict[str, ModelSettings] = Field(default_factory=_default_models, min_length=1)
    default_model: str = DEFAULT_MODEL
    cache_ttl_s: int = Field(default=3600, ge=0)  # 0 turns the response cache off
    cache_nonzero_temperature: bool = False
    retry_429_free: bool = True  # a 429 gives the try back: the request was never run
    tries: int = Field(default=5, ge=1)
    backoff: int | list[int] = [5, 20, 60, 120]  # seconds before retries after 5xx / network
    pending_expiry_s: int = Field(default=86_400, ge=1)
    webhook_secret: SecretStr | None = None  # or SKYLINE_CLAUDE_WEBHOOK_SECRET
    webhook_hosts: list[str] = []  # empty: any http(s) host
    batch_api_threshold: int = Field(default=100, ge=1)
    message_batch_poll_s: float = Field(default=60, gt=0)  # how often the scheduler asks
    # The window the models' per-minute limits apply to: a minute, but tests shorten it.
    rate_limit_window_s: float = Field(default=60, gt=0)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme not in ("http", "https")):
            raise ValueError("base_url must be an http(s) URL, e.g. https://api.anthropic.com")
        return value

    @field_validator("backoff")
    @classmethod
    def _backoff_is_not_negative(cls, value: int | list[int]) -> int | list[int]:
        if any(s < 0 for s in (value if isinstance(value, list) else [value])):
            raise ValueError("backoff seconds cannot be negative")
        return value

    @field_validator("webhook_hosts")
    @classmethod
    def _hosts_are_lower_case(cls, hosts: list[str]) -> list[str]:
        return [host.strip().lower() for host in hosts if host.strip()]

    @model_validator(mode="after")
    def _default_model_is_allowed(self) -> ClaudeSettings:
        if self.default_model not in self.models:
            allowed = ", ".join(sorted(self.models))
            raise ValueError(
                f"default_model {self.default_model!r} is not under [claude.models] "
                f"(allowed: {allowed})"
            )
        return self
