"""Numbers, durations and moments as people read them: 1.2k, 3.4 s, 2 min ago.

Pages show these and put the exact value in the element's title (see ``_macros.html``).
"""

from __future__ import annotations

from datetime import UTC, datetime

UNITS = ((1e9, "B"), (1e6, "M"), (1e3, "k"))
MISSING = "\N{EN DASH}"  # no value yet
SPANS = ((86_400, "d"), (3_600, "h"), (60, "min"), (1, "s"))


def compact(value: float | None) -> str:
    if value is None:
        return MISSING
    for size, unit in UNITS:
        if abs(value) >= size:
            return f"{value / size:.1f}".removesuffix(".0") + unit
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.1f}"


def duration_ms(ms: float | None) -> str:
    if ms is None:
        return MISSING
    if ms < 1:
        return f"{ms:.2f} ms" if ms > 0 else "0 ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    for size, unit in SPANS:
        if seconds >= size:
            figure = seconds / size
            shown = f"{figure:.1f}".removesuffix(".0") if figure < 100 else f"{figure:.0f}"
            return f"{shown} {unit}"
    return f"{seconds:.1f} s"


def ago(moment: datetime | float | None, now: datetime | None = None) -> str:
    """``moment`` is a datetime or a Unix time in seconds."""
    if moment is None:
        return "never"
    moment = as_datetime(moment)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if -5 < seconds < 5:
        return "just now"
    if seconds < 0:
        return f"in {duration_ms(-seconds * 1000)}"
    for size, unit in SPANS:
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def exact(moment: datetime | float | None) -> str:
    if moment is None:
        return ""
    return as_datetime(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def as_datetime(moment: datetime | float) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromtimestamp(moment, UTC)
