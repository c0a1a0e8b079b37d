"""The Redis side of job middleware: named rate limits and exception throttles.

A rate limit is a sliding-window log, not a fixed-window counter: a fixed window
lets 2N jobs start within one second across a window boundary. One sorted set
per limiter and ``by`` value holds the admission times of its longest window, so
every window of a limit (per second, minute, hour) is checked and recorded by
one Lua call on one key, timed by the Redis server's clock so that workers on
hosts whose clocks disagree still share one timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from core.keys import Keys

if TYPE_CHECKING:
    from core.context import JobContext

WINDOW_S = {"per_second": 1, "per_minute": 60, "per_hour": 3600}
UNPARTITIONED = "all"

# A job starts a moment after Redis admits it (reply, later middleware, the call).
# Each admission stays in the window this much longer, so the limit holds for the
# times jobs start, not only for the times Redis admitted them.
START_MARGIN_MS = 50

ADMIT = """
-- KEYS: the limiter's log. ARGV: now_ms ('' = server clock), margin_ms, member,
-- then window_ms, max pairs. Returns 0 (admitted and recorded) or ms to wait.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('time')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local longest = 0
for i = 4, #ARGV, 2 do longest = math.max(longest, tonumber(ARGV[i])) end
redis.call('zremrangebyscore', KEYS[1], '-inf', string.format('%d', now - longest))
local wait = 0
for i = 4, #ARGV, 2 do
  local window, max = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local since = string.format('(%d', now - window)
  local used = redis.call('zcount', KEYS[1], since, '+inf')
  if used >= max then
    local leaving = redis.call('zrangebyscore', KEYS[1], since, '+inf',
      'WITHSCORES', 'LIMIT', used - max, 1)
    wait = math.max(wait, tonumber(leaving[2]) + window - now)
  end
end
if wait > 0 then return wait end
local margin = tonumber(ARGV[2])
redis.call('zadd', KEYS[1], now + margin, ARGV[3])
redis.call('pexpire', KEYS[1], longest + margin)
return 0
"""

# The count expires decay after the first exception; reaching the limit restarts
# the expiry, so the cool-down is a full decay from the exception that tripped it.
HIT = """
local count = redis.call('incr', KEYS[1])
if count == 1 or count >= tonumber(ARGV[1]) then
  redis.call('pexpire', KEYS[1], ARGV[2])
end
return count
"""


@dataclass(frozen=True)
class Limit:
    name: str
    windows: tuple[tuple[int, int], ...]  # (window_s, max starts), shortest first
    by: Callable[[JobContext], str] | None = None

    def partition(self, job: JobContext) -> str:
        return UNPARTITIONED if self.by is None else str(self.by(job))

    @property
    def longest_s(self) -> int:
        return self.windows[-1][0]


_limits: dict[str, Limit] = {}


def limiter(
    name: str,
    per_second: int | None = None,
    per_minute: int | None = None,
    per_hour: int | None = None,
    by: Callable[[JobContext], str] | None = None,
) -> Limit:
    """Define (or redefine) the limit that ``RateLimited(name)`` enforces."""
    given = {"per_second": per_second, "per_minute": per_minute, "per_hour": per_hour}
    windows = tuple((WINDOW_S[k], n) for k, n in given.items() if n is not None)
    if not windows:
        raise ValueError(f"limiter {name!r} needs per_second, per_minute or per_hour")
    if any(n < 1 for _, n in windows):
        raise ValueError(f"limiter {name!r}: a limit must allow at least 1 job")
    _limits[name] = Limit(name, windows, by)
    return _limits[name]


def get_limit(name: str) -> Limit:
    try:
        return _limits[name]
    except KeyError:
        raise LookupError(
            f"no limiter named {name!r}: define it with limiter({name!r}, per_minute=...) "
            "in a module the worker imports (--app)"
        ) from None


def admit(
    client: redis.Redis, keys: Keys, limit: Limit, by: str, now_ms: int | None = None
) -> float:
    """Record one start and return 0, or return the seconds until the limit has room."""
    args: list[Any] = ["" if now_ms is None else now_ms, START_MARGIN_MS, uuid.uuid4().hex]
    for window_s, most in limit.windows:
        args += [window_s * 1000, most]
    key = keys.rate_limit(limit.name, by, limit.longest_s)
    return int(client.register_script(ADMIT)(keys=[key], args=args)) / 1000


def throttled_for(client: redis.Redis, key: str, max_exceptions: int) -> float:
    """Seconds left in the cool-down, or 0 when jobs may run."""
    pipe = client.pipeline()
    count, ttl_ms = pipe.get(key).pttl(key).execute()
    if count is None or int(count) < max_exceptions:
        return 0.0
    return max(ttl_ms, 1) / 1000


def hit(client: redis.Redis, key: str, max_exceptions: int, decay_s: float) -> int:
    """Count one exception; returns the count within the decay."""
    decay_ms = max(int(decay_s * 1000), 1)
    return int(client.register_script(HIT)(keys=[key], args=[max_exceptions, decay_ms]))


def clear(client: redis.Redis, key: str) -> None:
    client.delete(key)
