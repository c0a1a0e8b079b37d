"""Redis locks held by a token, so only their holder frees them (unique jobs, overlap guards)."""

from __future__ import annotations

import redis

RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Locks:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._release = client.register_script(RELEASE)

    def acquire(self, key: str, token: str, ttl_s: float | None) -> bool:
        px = int(ttl_s * 1000) if ttl_s else None
        return bool(self.client.set(key, token, nx=True, px=px))

    def release(self, key: str, token: str) -> bool:
        """Free the lock only if ``token`` still holds it (it may have expired and moved on)."""
        return bool(self._release(keys=[key], args=[token]))
