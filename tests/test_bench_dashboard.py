"""bench/dashboard.py: which requests it makes of the app, and a run on a tiny data set, where
it seeds what it is asked for and times every GET route. Timings are never asserted."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from bench.dashboard import fill, measure, parameter_values, probes, table, write_config
from bench.dashboard_seed import Bench, Seeded, Sizes, seed
from core.job_record import JobIndex
from dashboard.app import create_app, view_routes

TINY = Sizes(completed=30, failed=12, batches=4, days=1, requests=2)
SNAPSHOTS_A_DAY = 24 * 12 * (6 + 3)  # 5-minute intervals, 6 job names and 3 queues
SEEDED = Seeded(
    counts={},
    seconds={},
    job_ids=[("job-1", "completed"), ("job-2", "failed")],
    batch_id="batch-1",
    completed_before="1.5",
    claude_request_id="request-1",
    claude_batch_id="claude-batch-1",
)


def test_path_parameters_are_filled_by_the_segment_before_them():
    values = parameter_values(SEEDED)
    assert fill("/job/{id}", values) == [("/job/job-1", "completed"), ("/job/job-2", "failed")]
    assert fill("/partials/batches/{id}", values) == [("/partials/batches/batch-1", "")]
    assert fill("/ai/requests/{id}", values) == [("/ai/requests/request-1", "")]
    claude_batch = [("/api/claude/batches/claude-batch-1", "")]
    assert fill("/api/claude/batches/{id}", values) == claude_batch
    assert [url for url, _ in fill("/metrics/{kind}/{name:path}", values)] == [
        "/metrics/jobs/bench.jobs.noop",
        "/metrics/queues/emails",
    ]


def test_a_route_whose_parameter_cannot_be_filled_is_named_in_the_error():
    def page(request):
        return Response("")

    app = Starlette(routes=[Route("/", page), Route("/supervisors/{name}", page)])
    with pytest.raises(
        SystemExit, match=r"/supervisors/\{name\} \(no value for supervisors/name\)"
    ):
        probes(app, SEEDED)


@pytest.mark.slow
def test_it_seeds_the_counts_asked_for_and_prints_a_row_per_get_route(
    runtime, worker_env, tmp_path
):
    env = worker_env | {"SKYLINE_CONFIG": str(write_config(tmp_path))}
    app = create_app(runtime)
    dash = app.state.dashboard
    seeded = seed(Bench(tmp_path, env, runtime), dash, TINY)

    assert dash.records.counts()[JobIndex.COMPLETED] == seeded.counts["completed"] == 30
    assert dash.failed.count() == seeded.counts["failed"] == 12
    assert dash.batches.count() == seeded.counts["batches"] == 4
    assert seeded.counts["snapshots"] == SNAPSHOTS_A_DAY

    printed = table(measure(app, seeded, TINY.requests)).splitlines()
    requested = [unquote(line.split()[0].partition("?")[0]) for line in printed[1:]]
    get_routes = [
        route
        for route in view_routes()
        if isinstance(route, Route) and "GET" in route.methods and route.path != "/health"
    ]
    assert len(get_routes) >= 10
    for route in get_routes:
        assert any(route.path_regex.match(path) for path in requested), route.path
