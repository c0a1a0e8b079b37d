"""The AI usage page's figures: core's SQL aggregates shaped into cards, charts and tables.

Windows: requests and tokens per minute over the last hour, cost per UTC day over the
last 14 days, everything else over the last 24 hours. Empty minutes and days are zeros,
not gaps: no request is a figure too. Rate-limit headroom is the shared limiter's current
window against each model's configured limits (and what the API last said remains).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.claude.limiter import RateLimiter
from core.claude.records import ClaudeRequestRecord
from core.claude.settings import ClaudeSettings
from core.claude.usage import ClaudeUsageRepository, TokenUse, Totals
from dashboard.charts import Chart, Sample, Unit, line_chart, number_label
from dashboard.claude_requests import Durations, durations
from dashboard.context import Dashboard

DAY = timedelta(days=1)
MINUTE_S = 60
DAY_S = 86_400
COST_DAYS = 14
REQUESTS = Unit("requests/min", number_label)
TOKENS = Unit("tokens/min", number_label)
USD = Unit("USD", lambda value: f"${number_label(value)}")
# (what the limiter counts, the limit's setting, how the page names it)
DIMENSIONS = (
    ("requests", "requests_per_minute", "Requests"),
    ("input_tokens", "input_tokens_per_minute", "Input tokens"),
    ("output_tokens", "output_tokens_per_minute", "Output tokens"),
)


@dataclass(frozen=True)
class Budget:
    """One dimension of one model's rate limit, in the limiter's current window."""

    label: str
    used: int
    limit: int | None  # None: no limit configured
    api_remaining: int | None  # what the API's headers last said remains, until their reset

    @property
    def left(self) -> int | None:
        """What may still be sent this minute; None when nothing bounds it."""
        configured = None if self.limit is None else self.limit - self.used
        known = [n for n in (configured, self.api_remaining) if n is not None]
        return max(min(known), 0) if known else None


@dataclass(frozen=True)
class Headroom:
    model: str
    budgets: list[Budget]
    window_s: float  # the limits are per minute: per window, when tests shorten it


@dataclass(frozen=True)
class Slow:
    request: ClaudeRequestRecord
    durations: Durations


@dataclass(frozen=True)
class AiUsage:
    totals: Totals
    requests_chart: Chart
    token_charts: list[tuple[str, Chart]]  # by model, models with answers in the hour
    models: list[tuple[str, TokenUse]]  # the hour's totals, by model
    cost_chart: Chart
    cost_days: list[tuple[datetime, float]]  # newest first
    headroom: list[Headroom]
    slowest: list[Slow]


def read_usage(dash: Dashboard, owner: str | None, now: datetime | None = None) -> AiUsage:
    now = now or datetime.now(UTC)
    usage = ClaudeUsageRepository(dash.runtime.engine)
    minutes = _minutes(now)
    hour_start, hour_end = minutes[0], minutes[-1] + timedelta(minutes=1)
    per_minute = usage.requests_per_bucket(hour_start, hour_end, MINUTE_S, owner)
    tokens = usage.tokens_per_bucket(hour_start, hour_end, MINUTE_S, owner)
    days = _days(now)
    costs = usage.cost_per_bucket(days[0], days[-1] + DAY, DAY_S, owner)
    since = now - DAY
    return AiUsage(
        totals=usage.totals(since, owner),
        requests_chart=_chart("Requests per minute", REQUESTS, minutes, per_minute),
        token_charts=[
            (model, _chart(f"{model}: tokens per minute", TOKENS, minutes, _tokens(buckets)))
            for model, buckets in sorted(tokens.items())
        ],
        models=[(model, _total(buckets)) for model, buckets in sorted(tokens.items())],
        cost_chart=_chart("Cost per day (UTC), USD", USD, days, costs),
        cost_days=[(day, costs.get(day, 0.0)) for day in reversed(days)],
        headroom=read_headroom(dash, dash.settings.claude),
        slowest=[Slow(r, durations(r, now)) for r in usage.slowest(since, owner=owner)],
    )


def read_headroom(dash: Dashboard, settings: ClaudeSettings) -> list[Headroom]:
    limiter = RateLimiter(dash.client, dash.keys, settings.rate_limit_window_s)
    found = []
    for model, limits in sorted(settings.models.items()):
        use = limiter.used(model)
        budgets = [
            Budget(label, getattr(use, name), getattr(limits, limit), use.api_remaining.get(name))
            for name, limit, label in DIMENSIONS
        ]
        found.append(Headroom(model, budgets, settings.rate_limit_window_s))
    return found


def _minutes(now: datetime) -> list[datetime]:
    """The last 60 whole minutes, the current one last."""
    current = now.replace(second=0, microsecond=0)
    return [current - timedelta(minutes=n) for n in range(59, -1, -1)]


def _days(now: datetime) -> list[datetime]:
    """The last ``COST_DAYS`` UTC days, today last."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today - DAY * n for n in range(COST_DAYS - 1, -1, -1)]


def _chart(title: str, unit: Unit, buckets: list[datetime], values: dict[datetime, float]) -> Chart:
    samples = [Sample(at, values.get(at, 0), values.get(at, 0)) for at in buckets]
    end = buckets[-1] + (buckets[1] - buckets[0])
    return line_chart(samples, buckets[0], end, title=title, unit=unit)


def _tokens(buckets: dict[datetime, TokenUse]) -> dict[datetime, float]:
    return {at: use.tokens for at, use in buckets.items()}


def _total(buckets: dict[datetime, TokenUse]) -> TokenUse:
    total = TokenUse()
    for use in buckets.values():
        total.add(use)
    return total
