"""Tokens and money: a response's usage, what it cost, and a request's size before it is sent."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from core.claude.settings import ModelSettings

PER_MILLION = 1_000_000
# English text runs about four characters to a token; the limiter only needs an estimate
# (the API's usage settles the real count afterwards).
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @classmethod
    def from_api(cls, usage: Any) -> Usage:
        """From the SDK's ``message.usage``; the cache counts are null when caching is off."""
        return cls(
            input_tokens=getattr(usage, "input_tokens", None) or 0,
            output_tokens=getattr(usage, "output_tokens", None) or 0,
            cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0,
            cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
        )


def cost_usd(usage: Usage, prices: ModelSettings) -> float:
    """What a response cost: each kind of token at its own price per million."""
    total = (
        usage.input_tokens * prices.input_usd_per_mtok
        + usage.output_tokens * prices.output_usd_per_mtok
        + usage.cache_creation_input_tokens * prices.cache_write_usd_per_mtok
        + usage.cache_read_input_tokens * prices.cache_read_usd_per_mtok
    )
    return total / PER_MILLION


def estimate_input_tokens(messages: list[dict[str, Any]], system: str | None) -> int:
    """A request's input tokens, roughly, from the length of its text (JSON for blocks)."""
    chars = len(system or "")
    for message in messages:
        content = message.get("content")
        chars += len(content) if isinstance(content, str) else len(json.dumps(content))
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))
