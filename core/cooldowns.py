"""Cool-downs shared through Redis, so several schedulers send one alert between them.

The key holds when the alert last fired, in ms of the caller's clock: tests pass the
clock and hit the exact boundary. The key's own expiry only cleans up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from core.keys import Keys

if TYPE_CHECKING:
    from core.alert_channels import Channel
    from core.settings import AlertSettings

CLAIM = """
local last = tonumber(redis.call('get', KEYS[1]))
local now, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
if last and now < last + cooldown then
  return 0
end
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[3])
return 1
"""

UNDO = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  return redis.call('del', KEYS[1])
end
redis.call('set', KEYS[1], ARGV[2], 'px', ARGV[3])
return 1
"""


class Cooldowns:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._claim = client.register_script(CLAIM)
        self._undo = client.register_script(UNDO)

    def claim(self, key: str, now_ms: int, cooldown_ms: int, keep_ms: int | None = None) -> bool:
        """True for the one caller that may act now; False until the cool-down has passed.

        ``keep_ms`` keeps the time of the claim longer than the cool-down, for callers
        that read it back with ``last``.
        """
        keep_ms = max(keep_ms or cooldown_ms, cooldown_ms)
        return bool(self._claim(keys=[key], args=[now_ms, cooldown_ms, keep_ms]))

    def last(self, key: str) -> int | None:
        value = self.client.get(key)
        return int(value) if value is not None else None

    def undo(self, key: str, now_ms: int, previous_ms: int | None = None, keep_ms: int = 0) -> None:
        """Give back a claim whose action failed, unless a later claim replaced it:
        the previous claim's time comes back, or none."""
        previous = "" if previous_ms is None else previous_ms
        self._undo(keys=[key], args=[now_ms, previous, max(keep_ms, 1)])


@dataclass(frozen=True)
class Alerting:
    """What every kind of alert needs: its settings, where it goes, and its cool-downs."""

    cooldowns: Cooldowns
    keys: Keys
    settings: AlertSettings
    channels: list[Channel]
    env: str
