"""Metrics: each job's and queue's latest snapshot figures, and charts of its snapshots over
a range, as pages under /metrics/ and as JSON under /api/metrics/.

``/metrics`` itself is the Prometheus endpoint (another module); nothing here routes there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.snapshots import Bucket, MetricKind, Snapshot
from dashboard.api import ApiResponse
from dashboard.charts import (
    MAX_POINTS,
    MILLISECONDS,
    PER_MINUTE,
    Chart,
    Sample,
    line_chart,
)
from dashboard.context import Dashboard, dashboard
from dashboard.templating import render

KINDS = {"jobs": MetricKind.JOB, "queues": MetricKind.QUEUE}
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_RANGE = "24h"
# The snapshot field each chart shows, with its title and unit; queues also chart their wait.
CHARTS = {
    "throughput": ("Throughput, jobs per minute", PER_MINUTE),
    "runtime_avg_ms": ("Average runtime", MILLISECONDS),
    "wait_p95_ms": ("Wait time, 95th percentile", MILLISECONDS),
}
CHARTS_OF = {MetricKind.JOB: ("throughput", "runtime_avg_ms"), MetricKind.QUEUE: tuple(CHARTS)}


@dataclass(frozen=True)
class MetricRow:
    name: str
    latest: Snapshot | None  # None: no jobs in the newest snapshot


@dataclass(frozen=True)
class MetricSeries:
    kind: str  # "jobs" or "queues", as in the URL
    name: str
    range: str
    since: datetime
    until: datetime
    snapshots: int
    processed: int
    failed: int
    series: dict[str, list[Sample]]  # by CHARTS key, at most MAX_POINTS samples each


def kind_of(request: Request) -> MetricKind:
    kind = request.path_params["kind"]
    if kind not in KINDS:
        raise HTTPException(404, f"There are metrics of jobs and of queues, not of {kind!r}.")
    return KINDS[kind]


def range_of(request: Request) -> str:
    chosen = request.query_params.get("range") or DEFAULT_RANGE
    if chosen not in RANGES:
        allowed = ", ".join(RANGES)
        raise HTTPException(400, f"range must be one of {allowed}, not {chosen!r}.")
    return chosen


def read_rows(dash: Dashboard, kind: MetricKind) -> tuple[list[MetricRow], datetime | None]:
    """Every name ever snapshotted (a few dozen), with its figures of the newest snapshot."""
    latest = {snapshot.name: snapshot for snapshot in dash.snapshots.latest(kind)}
    taken_at = max((s.taken_at for s in latest.values()), default=None)
    return [MetricRow(name, latest.get(name)) for name in dash.snapshots.names(kind)], taken_at


def read_series(request: Request) -> MetricSeries:
    """One name's snapshots in the requested range, bucketed by the database."""
    dash, kind, chosen = dashboard(request), kind_of(request), range_of(request)
    name = request.path_params["name"]
    until = datetime.now(UTC)
    since = until - RANGES[chosen]
    fields = CHARTS_OF[kind]
    buckets = dash.snapshots.buckets(kind, name, since, until, fields, MAX_POINTS)
    if not buckets and name not in dash.snapshots.names(kind):
        raise HTTPException(404, f"No snapshot has ever counted the {kind.value} {name!r}.")
    return MetricSeries(
        kind=request.path_params["kind"],
        name=name,
        range=chosen,
        since=since,
        until=until,
        snapshots=sum(b.snapshots for b in buckets),
        processed=sum(b.processed for b in buckets),
        failed=sum(b.failed for b in buckets),
        series={field: [sample_of(b, field) for b in buckets] for field in fields},
    )


def sample_of(bucket: Bucket, field: str) -> Sample:
    """One point of a chart: a lone snapshot's value, or its bucket's mean and peak."""
    until = bucket.last if bucket.snapshots > 1 else None
    mean, peak = bucket.means[field], bucket.peaks[field]
    return Sample(bucket.first, mean, peak, bucket.snapshots, until)


def charts_of(found: MetricSeries, interval_s: float) -> list[tuple[str, Chart]]:
    """A line breaks where snapshots are missing: well over one interval (or bucket) apart."""
    bucket = (found.until - found.since) / MAX_POINTS
    gap = max(timedelta(seconds=interval_s), bucket) * 2.5
    charts = []
    for key, samples in found.series.items():
        title, unit = CHARTS[key]
        chart = line_chart(samples, found.since, found.until, title=title, unit=unit, gap=gap)
        charts.append((key, chart))
    return charts


def metrics_page(request: Request) -> Response:
    kind = kind_of(request)
    rows, taken_at = read_rows(dashboard(request), kind)
    context = dict(kind=request.path_params["kind"], rows=rows, taken_at=taken_at)
    return render(request, "metrics.html", **context, interval_s=_interval_s(request))


def metric_page(request: Request) -> Response:
    found = read_series(request)
    interval_s = _interval_s(request)
    charts = charts_of(found, interval_s)
    context = dict(found=found, charts=charts, ranges=list(RANGES), interval_s=interval_s)
    return render(request, "metric.html", **context)


def _interval_s(request: Request) -> int:
    return dashboard(request).settings.metrics.snapshot_interval


def api_metrics(request: Request) -> ApiResponse:
    """Names are few (one per job class or queue): no pages.
    ---
    summary: Latest figures of every job or queue
    description: >
      Every job name (kind jobs) or queue (kind queues) that a metrics snapshot ever
      counted, with its row of the newest snapshot, or null when that snapshot counted
      none of its jobs.
    tags: [metrics]
    parameters:
      - {name: kind, in: path, required: true, schema: {type: string, enum: [jobs, queues]}}
    responses:
      "200":
        description: The names and their latest figures.
        content:
          application/json:
            schema:
              type: object
              properties:
                taken_at: {type: [string, "null"], format: date-time}
                data:
                  type: array
                  items:
                    type: object
                    properties:
                      name: {type: string}
                      latest:
                        type: [object, "null"]
                        description: >
                          The snapshot's row: taken_at, interval_s, throughput (jobs per
                          minute), runtime_avg_ms, runtime_max_ms, wait_p50_ms, wait_p95_ms,
                          wait_max_ms, processed, failed, pushed.
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    rows, taken_at = read_rows(dashboard(request), kind_of(request))
    data = [{"name": row.name, "latest": row.latest} for row in rows]
    return ApiResponse({"data": data, "taken_at": taken_at})


def api_metric(request: Request) -> ApiResponse:
    """
    ---
    summary: One job's or queue's figures over a range
    description: >
      The snapshots taken in the range, bucketed into at most 300 points per series: each
      point holds the mean (value) and the highest (peak) of its bucket's snapshots, how
      many there were (count), the first one's time (at) and, for several, the last's
      (until). Queues also have wait_p95_ms.
    tags: [metrics]
    parameters:
      - {name: kind, in: path, required: true, schema: {type: string, enum: [jobs, queues]}}
      - {name: name, in: path, required: true, schema: {type: string}}
      - name: range
        in: query
        required: false
        schema: {type: string, enum: ["1h", "24h", "7d"], default: "24h"}
    responses:
      "200":
        description: The series.
        content:
          application/json:
            schema:
              type: object
              properties:
                kind: {type: string}
                name: {type: string}
                range: {type: string}
                since: {type: string, format: date-time}
                until: {type: string, format: date-time}
                snapshots: {type: integer}
                processed: {type: integer}
                failed: {type: integer}
                series:
                  type: object
                  additionalProperties:
                    type: array
                    items:
                      type: object
                      properties:
                        at: {type: string, format: date-time}
                        until: {type: [string, "null"], format: date-time}
                        value: {type: number}
                        peak: {type: number}
                        count: {type: integer}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    return ApiResponse(read_series(request))


routes = [
    Route("/metrics/{kind}", metrics_page, methods=["GET"]),
    Route("/metrics/{kind}/{name:path}", metric_page, methods=["GET"]),
    Route("/api/metrics/{kind}", api_metrics, methods=["GET"]),
    Route("/api/metrics/{kind}/{name:path}", api_metric, methods=["GET"]),
]
