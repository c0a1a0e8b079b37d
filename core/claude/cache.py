"""The response cache: an identical request within the TTL reuses the stored answer.

Identical means the same model, messages, system prompt, max_tokens and temperature. A
request with temperature above 0 asks for variety, so it is cached only when the settings
say so. Entries live in Redis with the TTL, so every worker shares them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis

from core.claude.records import ClaudeRequestRecord
from core.claude.settings import ClaudeSettings
from core.keys import Keys


def request_digest(request: ClaudeRequestRecord) -> str:
    """The same digest for requests that must get the same answer, whoever sent them."""
    identity = [
        request.model,
        request.messages,
        request.system,
        request.max_tokens,
        float(request.temperature),
    ]
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    text: str
    stop_reason: str | None


class ResponseCache:
    def __init__(self, client: redis.Redis, keys: Keys, settings: ClaudeSettings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings

    def applies_to(self, request: ClaudeRequestRecord) -> bool:
        if self.settings.cache_ttl_s <= 0:
            return False
        return request.temperature == 0 or self.settings.cache_nonzero_temperature

    def get(self, request: ClaudeRequestRecord) -> CachedResponse | None:
        """None when the request is not cached (or the entry is unreadable)."""
        if not self.applies_to(request):
            return None
        raw = self.client.get(self.keys.claude_response(request_digest(request)))
        try:
            entry = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            return None
        stop_reason = entry.get("stop_reason")
        return CachedResponse(entry["text"], stop_reason if isinstance(stop_reason, str) else None)

    def put(self, request: ClaudeRequestRecord, text: str, stop_reason: str | None) -> None:
        if not self.applies_to(request):
            return
        entry = json.dumps({"text": text, "stop_reason": stop_reason, "request_id": request.id})
        key = self.keys.claude_response(request_digest(request))
        self.client.set(key, entry, ex=self.settings.cache_ttl_s)
