"""The Claude job's ``Limiter`` over the shared Redis ``RateLimiter``.

A request reserves one request, its estimated input tokens and ``max_tokens`` output
tokens (all it may use), waiting in the worker while the budget is spent; after the call
the reservation is settled to the usage the API reported, and the API's
``anthropic-ratelimit-*`` headers lower the budget when they know of less than the limiter.
Only models with limits configured touch Redis.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import redis

from core.claude.cost import Usage
from core.claude.limiter import BudgetTimeout, ModelLimits, RateLimiter, Reservation
from core.claude.services import ClaudeServices
from core.claude.settings import ClaudeSettings
from core.keys import Keys

# How long a job waits in its worker for budget (at most half a window: longer, and others
# keep taking it) before it is released to come back when the limiter expects room. A
# waiting async job's slot costs little, and its timeout leaves two minutes beyond the
# API call for this (core.claude.job.JOB_TIMEOUT_MARGIN_S).
MAX_WAIT_S = 30.0
# The shortest release: the limiter's estimate can be a few milliseconds.
MIN_RELEASE_S = 1.0
# A request reaches the API within this of its admission (the SQL write, a new HTTP client,
# the connection; more for a process's first request), so its reservation stays in the
# window that much longer: the limit then holds for the times the API sees. A second in a
# minute's window costs under 2% of the throughput.
ADMISSION_MARGIN_MS = 1000


def model_limits(settings: ClaudeSettings, model: str) -> ModelLimits | None:
    """The model's configured budgets; None when it has none (or is not configured)."""
    found = settings.models.get(model)
    if found is None:
        return None
    limits = ModelLimits(
        found.requests_per_minute, found.input_tokens_per_minute, found.output_tokens_per_minute
    )
    return None if limits == ModelLimits() else limits


class SharedLimiter:
    """One job run's view of the shared limiter: it keeps what ``acquire`` reserved until
    ``record`` settles it."""

    def __init__(
        self, limiter: RateLimiter, settings: ClaudeSettings, max_wait_s: float = MAX_WAIT_S
    ) -> None:
        self.limiter = limiter
        self.settings = settings
        self.max_wait_s = max_wait_s
        self.reservation: Reservation | None = None

    async def acquire(self, model: str, input_tokens_estimate: int, max_tokens: int) -> float:
        limits = model_limits(self.settings, model)
        if limits is None:
            return 0.0
        reservation = _fitted(limits, input_tokens_estimate, max_tokens)
        try:
            await self.limiter.wait_for_budget_async(model, limits, reservation, self.max_wait_s)
        except BudgetTimeout as exc:
            return max(exc.wait_s, MIN_RELEASE_S)
        self.reservation = reservation
        return 0.0

    def record(self, model: str, usage: Usage | None, headers: Mapping[str, str]) -> None:
        """Input tokens count as the API counts them against the limit: uncached input and
        cache writes (cache reads do not count). Unanswered, the request keeps its place
        in the window but gives its tokens back."""
        limits = model_limits(self.settings, model)
        if limits is None:
            return
        if self.reservation is not None:
            used = usage or Usage()
            spent_input = used.input_tokens + used.cache_creation_input_tokens
            self.limiter.settle(model, self.reservation, spent_input, used.output_tokens)
            self.reservation = None
        if headers:
            self.limiter.observe(model, limits, headers)


def shared_limiter(services: ClaudeServices) -> SharedLimiter | None:
    """A limiter for one run of the job; None when no model has limits configured."""
    settings = services.claude
    if not any(model_limits(settings, model) for model in settings.models):
        return None
    queue = services.dispatcher.queue()
    window_s = settings.rate_limit_window_s
    limiter = _rate_limiter(queue.client, queue.keys, window_s)
    return SharedLimiter(limiter, settings, min(MAX_WAIT_S, window_s / 2))


@functools.lru_cache(maxsize=8)
def _rate_limiter(client: redis.Redis, keys: Keys, window_s: float) -> RateLimiter:
    """One per Redis client: building it reads the Lua script's file."""
    return RateLimiter(client, keys, window_s, ADMISSION_MARGIN_MS)


def _fitted(limits: ModelLimits, input_tokens: int, max_tokens: int) -> Reservation:
    """A request larger than a whole window's budget reserves all of it: it goes when the
    window is otherwise empty instead of never."""
    if limits.input_tokens_per_minute is not None:
        input_tokens = min(input_tokens, limits.input_tokens_per_minute)
    if limits.output_tokens_per_minute is not None:
        max_tokens = min(max_tokens, limits.output_tokens_per_minute)
    return Reservation(input_tokens, max_tokens)
