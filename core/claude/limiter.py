"""One rate limit per Claude model, shared by every worker process and host through Redis.

Like ``core.limits``, a sliding-window log timed by the Redis server's clock, but weighted:
each reservation carries its tokens, and one Lua call per acquire checks the request, input
and output budgets and records the reservation, so no process can slip in between another's
read of the usage and its write. Output tokens are reserved at ``max_tokens`` (all a request
may use) and settled to what it did use. The API's ``anthropic-ratelimit-*`` headers lower a
budget until their reset when they know of usage the limiter cannot see (another client on
the same API key, an organisation tier below the configured limits).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime

import redis

from core.keys import Keys
from core.limits import START_MARGIN_MS
from core.pipelines import register

DEFAULT_WINDOW_S = 60.0
# Budget can free up before the wait the limiter named (a settle returns unused output
# tokens), so a waiting job looks again at least this often.
MAX_PAUSE_S = 1.0
# The header prefixes, in the order the script counts the dimensions.
HEADERS = ("requests", "input-tokens", "output-tokens")
# The script's names for them, and WindowUse's.
DIMENSIONS = {"requests": "requests", "input": "input_tokens", "output": "output_tokens"}
UNLIMITED = -1


@dataclass(frozen=True)
class ModelLimits:
    """A model's budgets per window (a minute unless the limiter was built with another
    window); None is unlimited."""

    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value < 1:
                raise ValueError(f"{f.name} must be at least 1, or None for unlimited")

    def as_args(self) -> list[int]:
        values = (getattr(self, f.name) for f in fields(self))
        return [UNLIMITED if n is None else n for n in values]


@dataclass(frozen=True)
class Reservation:
    """One request's share of a model's budget: what ``acquire`` asks for."""

    input_tokens: int
    output_tokens: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if self.input_tokens < 0 or self.output_tokens < 0:
            raise ValueError("a reservation's token counts cannot be negative")

    @property
    def member(self) -> str:
        return f"{self.id}:{self.input_tokens}:{self.output_tokens}"

    def wants(self) -> list[int]:
        return [1, self.input_tokens, self.output_tokens]


@dataclass(frozen=True)
class WindowUse:
    """What one model's budget holds now: the reservations in the window, added up, and
    what the API's headers last said remains (by dimension, only until their reset)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    api_remaining: dict[str, int] = field(default_factory=dict)


class BudgetTimeout(TimeoutError):
    """No budget within the timeout. ``wait_s`` is the limiter's last estimate of when there
    will be: a fair delay for releasing the job instead of failing it."""

    def __init__(self, model: str, reservation: Reservation, timeout_s: float, wait_s: float):
        super().__init__(
            f"no rate-limit budget for {model} within {timeout_s:g} s for 1 request, "
            f"{reservation.input_tokens} input and {reservation.output_tokens} output tokens; "
            f"the limiter expects room in {wait_s:.3g} s"
        )
        self.wait_s = wait_s


class RateLimiter:
    """Requests, input and output tokens per window for each model, across all workers."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        window_s: float = DEFAULT_WINDOW_S,
        margin_ms: int = START_MARGIN_MS,
    ):
        """``margin_ms``: how much later than its admission a reservation may be used (it
        stays in the window that much longer)."""
        if window_s <= 0:
            raise ValueError("the window must be longer than 0 s")
        self.keys = keys
        self.client = client
        self.window_ms = int(window_s * 1000)
        self.margin_ms = margin_ms
        self._script = register(client, "claude_budget")

    def acquire(
        self, model: str, limits: ModelLimits, reservation: Reservation, now_ms: int | None = None
    ) -> float:
        """Reserve one request and the reservation's tokens in the current window and return
        0, or reserve nothing and return the seconds until the budget would allow it."""
        args: list[int] = []
        for want, limit, name in zip(reservation.wants(), limits.as_args(), HEADERS, strict=True):
            if limit != UNLIMITED and want > limit:
                raise ValueError(
                    f"{want} {name} can never fit {model}'s budget of {limit} per window"
                )
            args += [want, limit]
        return self._run("acquire", model, now_ms, reservation.member, *args) / 1000

    def settle(
        self, model: str, reservation: Reservation, actual_input: int, actual_output: int
    ) -> bool:
        """Count what the request really used instead of what it reserved (once per
        reservation). False when it has left the window already: nothing left to correct."""
        actual = Reservation(actual_input, actual_output, reservation.id)
        return bool(self._run("settle", model, None, reservation.member, actual.member))

    def observe(
        self,
        model: str,
        limits: ModelLimits,
        headers: Mapping[str, str],
        now_ms: int | None = None,
    ) -> int:
        """Lower each budget whose ``anthropic-ratelimit-*-remaining`` header says less remains
        than the limiter thinks, until that header's reset (at most one window ahead). Missing
        or malformed headers are ignored. Returns how many budgets were lowered."""
        args = _observations(headers, limits)
        return int(self._run("observe", model, now_ms, *args)) if args else 0

    def used(self, model: str, now_ms: int | None = None) -> WindowUse:
        """Read-only, for the dashboard: the script keeps running totals, but brings them
        up to date only when it next runs, so this adds up the log's live part itself."""
        if now_ms is None:
            seconds, microseconds = self.client.time()
            now_ms = seconds * 1000 + microseconds // 1000
        with self.client.pipeline() as pipe:  # one slot: the keys share a hash tag
            since = f"({now_ms - self.window_ms}"  # as the script: older ones have left
            pipe.zrangebyscore(self.keys.claude_budget(model, "log"), since, "+inf")
            pipe.hgetall(self.keys.claude_budget(model, "state"))
            members, state = pipe.execute()
        totals = [0, 0, 0]
        for member in members:
            _, input_tokens, output_tokens = _text(member).rsplit(":", 2)
            for i, amount in enumerate((1, int(input_tokens), int(output_tokens))):
                totals[i] += amount
        return WindowUse(*totals, api_remaining=_remaining(state, now_ms))

    def wait_for_budget(
        self, model: str, limits: ModelLimits, reservation: Reservation, timeout_s: float
    ) -> None:
        """Acquire, sleeping while the limiter says to wait; BudgetTimeout after ``timeout_s``."""
        deadline = _Deadline(model, reservation, timeout_s)
        while wait_s := self.acquire(model, limits, reservation):
            time.sleep(deadline.pause_s(wait_s))

    async def wait_for_budget_async(
        self, model: str, limits: ModelLimits, reservation: Reservation, timeout_s: float
    ) -> None:
        """``wait_for_budget`` for async jobs: other slots run while this one waits."""
        deadline = _Deadline(model, reservation, timeout_s)
        while wait_s := await asyncio.to_thread(self.acquire, model, limits, reservation):
            await asyncio.sleep(deadline.pause_s(wait_s))

    def _run(self, op: str, model: str, now_ms: int | None, *args: str | int) -> int:
        keys = [self.keys.claude_budget(model, "log"), self.keys.claude_budget(model, "state")]
        head = [op, "" if now_ms is None else now_ms, self.window_ms, self.margin_ms]
        return int(self._script(keys=keys, args=[*head, *args]))


class _Deadline:
    def __init__(self, model: str, reservation: Reservation, timeout_s: float) -> None:
        self.model = model
        self.reservation = reservation
        self.timeout_s = timeout_s
        self.end = time.monotonic() + timeout_s

    def pause_s(self, wait_s: float) -> float:
        """How long to sleep before trying again; raises once the time is up."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise BudgetTimeout(self.model, self.reservation, self.timeout_s, wait_s)
        return min(wait_s, MAX_PAUSE_S, left)


def _observations(headers: Mapping[str, str], limits: ModelLimits) -> list[int]:
    """(dimension, remaining, reset_ms, limit) for each dimension whose headers parse."""
    named = {str(k).lower(): str(v) for k, v in headers.items()}
    args: list[int] = []
    for i, (name, limit) in enumerate(zip(HEADERS, limits.as_args(), strict=True), start=1):
        remaining = _count(named.get(f"anthropic-ratelimit-{name}-remaining"))
        reset_ms = _instant_ms(named.get(f"anthropic-ratelimit-{name}-reset"))
        if remaining is not None and reset_ms is not None:
            args += [i, remaining, reset_ms, limit]
    return args


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _remaining(state: dict[bytes | str, bytes | str], now_ms: int) -> dict[str, int]:
    """The script's ``remaining:D`` whose ``reset:D`` is still ahead, by WindowUse's names."""
    named = {_text(key): _text(value) for key, value in state.items()}
    found = {}
    for dimension, name in DIMENSIONS.items():
        remaining = _count(named.get(f"remaining:{dimension}"))
        reset_ms = _count(named.get(f"reset:{dimension}"))
        if remaining is not None and reset_ms is not None and reset_ms > now_ms:
            found[name] = remaining
    return found


def _count(value: str | None) -> int | None:
    try:
        count = int(value) if value is not None else None
    except ValueError:
        return None
    return count if count is not None and count >= 0 else None


def _instant_ms(value: str | None) -> int | None:
    """An RFC 3339 time as ms since the epoch; None unless it names its offset."""
    try:
        moment = datetime.fromisoformat(value) if value is not None else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)
