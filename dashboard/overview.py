"""What the overview shows, read in a few round trips: masters and supervisors from their
heartbeats, live figures from the metrics, processes per queue from the pools."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from core.control import ALL_QUEUES, Heartbeat
from core.live_metrics import LiveFigures, live_figures
from core.payload import now_ms
from dashboard.context import Dashboard


@dataclass(frozen=True)
class Overview:
    status: str  # "active", "paused" or "inactive"
    masters: list[Heartbeat]
    supervisors: list[Heartbeat]
    figures: LiveFigures
    processes: int
    processes_by_queue: dict[str, int]


def read_overview(dash: Dashboard) -> Overview:
    masters = dash.control.alive("master")
    supervisors = dash.control.alive("supervisor")
    declared = {q for s in supervisors for q in s.details.get("queues", [])}
    figures = live_figures(dash.queue, dash.metrics, now_ms(), declared)
    return Overview(
        status=status_of(masters),
        masters=masters,
        supervisors=supervisors,
        figures=figures,
        processes=sum(int(m.details.get("processes", 0)) for m in masters),
        processes_by_queue=processes_by_queue(supervisors),
    )


def status_of(masters: list[Heartbeat]) -> str:
    if not masters:
        return "inactive"
    return "active" if any(m.status == "running" for m in masters) else "paused"


def processes_by_queue(supervisors: list[Heartbeat]) -> dict[str, int]:
    """A pool that serves several queues counts for each of them."""
    counts: Counter[str] = Counter()
    for supervisor in supervisors:
        queues = supervisor.details.get("queues", [])
        for group, pool in supervisor.details.get("pools", {}).items():
            for queue in queues if group == ALL_QUEUES else [group]:
                counts[queue] += int(pool.get("processes", 0))
    return dict(counts)
