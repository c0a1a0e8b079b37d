"""The metrics pages and their JSON: latest figures per job and queue, charts per range."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest

from core.snapshots import Snapshot, SnapshotRepository
from dashboard.charts import MAX_POINTS
from dashboard.humanize import exact


@pytest.fixture
def snapshots(app) -> SnapshotRepository:
    return app.state.dashboard.snapshots


@pytest.fixture
def viewer(client, sign_in):
    sign_in(client, "viewer")
    return client


def snapshot(kind: str, name: str, taken_at: datetime, **figures) -> Snapshot:
    values = dict(
        interval_s=300.0,
        throughput=0.0,
        runtime_avg_ms=0.0,
        runtime_max_ms=0.0,
        wait_p50_ms=0.0,
        wait_p95_ms=0.0,
        wait_max_ms=0.0,
        processed=0,
        failed=0,
        pushed=0,
    )
    return Snapshot(kind=kind, name=name, taken_at=taken_at, **(values | figures))


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def test_the_jobs_list_shows_each_name_with_its_newest_figures(viewer, snapshots):
    older, newer = ago(minutes=10), ago(minutes=5)
    snapshots.record(
        [
            snapshot("job", "send_welcome", older, throughput=99.0, processed=495),
            snapshot("job", "resize", older, throughput=3.0),
            snapshot(
                "job",
                "send_welcome",
                newer,
                throughput=12.5,
                runtime_avg_ms=250.0,
                processed=62,
                failed=4,
            ),
        ]
    )

    page = viewer.get("/metrics/jobs")

    assert page.status_code == 200
    row = page.text.split('href="/metrics/jobs/send_welcome"')[1].split("</tr>")[0]
    assert "12.5" in row and "250 ms" in row and ">62<" in row and ">4<" in row
    assert "99" not in row
    resize = page.text.split('href="/metrics/jobs/resize"')[1].split("</tr>")[0]
    assert "no jobs in the newest snapshot" in resize
    assert 'aria-current="page">Jobs</a>' in page.text


def test_the_queues_list_shows_the_wait_p95(viewer, snapshots):
    snapshots.record([snapshot("queue", "emails", ago(minutes=1), wait_p95_ms=1500.0)])

    page = viewer.get("/metrics/queues")

    assert "Wait p95" in page.text and "1.5 s" in page.text
    assert 'href="/metrics/queues/emails"' in page.text
    assert 'aria-current="page">Queues</a>' in page.text


def test_without_snapshots_the_pages_say_how_to_take_one(viewer, snapshots):
    for path in ("/metrics/jobs", "/metrics/queues"):
        page = viewer.get(path)
        assert page.status_code == 200
        assert "every 300 seconds" in page.text and "skyline snapshot" in page.text


RECORDED = {  # how long ago, and a throughput only that snapshot has
    "recent": (timedelta(minutes=30), 11.5),
    "hours": (timedelta(hours=3), 22.5),
    "days": (timedelta(days=3), 33.5),
    "old": (timedelta(days=10), 44.5),
}
SHOWN = {"1h": {"recent"}, "24h": {"recent", "hours"}, "7d": {"recent", "hours", "days"}}


@pytest.mark.parametrize("chosen", SHOWN)
def test_the_detail_charts_the_snapshots_of_its_range_only(viewer, snapshots, chosen):
    now = datetime.now(UTC)
    taken = {key: now - age for key, (age, _) in RECORDED.items()}
    snapshots.record(
        [
            snapshot(
                "queue",
                "emails",
                taken[key],
                throughput=value,
                processed=int(value * 10),
                wait_p95_ms=value * 100,
            )
            for key, (_, value) in RECORDED.items()
        ]
    )

    page = viewer.get(f"/metrics/queues/emails?range={chosen}")

    assert page.status_code == 200
    titles = html.unescape(page.text)
    for key, (_, value) in RECORDED.items():
        hover = f"<title>{exact(taken[key])}: {value} jobs/min</title>"
        wait = f"<title>{exact(taken[key])}: {value * 100:,} ms</title>"
        assert (hover in titles) == (key in SHOWN[chosen]), (key, chosen)
        assert (wait in titles) == (key in SHOWN[chosen]), (key, chosen)
    processed = sum(int(RECORDED[key][1] * 10) for key in SHOWN[chosen])
    assert f"{processed:,}" in page.text
    assert f'aria-current="page">{chosen}</a>' in page.text
    assert '<g class="chart-mark" tabindex="0"><title>' in page.text


def test_the_default_range_is_24_hours(viewer, snapshots):
    snapshots.record([snapshot("job", "resize", ago(hours=20), throughput=7.25)])
    snapshots.record([snapshot("job", "resize", ago(hours=30), throughput=8.25)])

    page = viewer.get("/metrics/jobs/resize")

    assert "7.25 jobs/min" in page.text and "8.25 jobs/min" not in page.text
    assert 'aria-current="page">24h</a>' in page.text
    assert "Wait time" not in page.text, "jobs have no wait chart"


def test_a_range_without_snapshots_shows_the_empty_state(viewer, snapshots):
    snapshots.record([snapshot("job", "resize", ago(days=2), throughput=1.0)])

    page = viewer.get("/metrics/jobs/resize?range=1h")

    assert page.status_code == 200
    assert "No snapshots of resize in the last 1h" in page.text
    assert "skyline snapshot" in page.text and "chart-point" not in page.text


def test_a_bad_range_is_refused_with_the_allowed_values(viewer, snapshots):
    snapshots.record([snapshot("job", "resize", ago(minutes=1))])

    page = viewer.get("/metrics/jobs/resize?range=2h")
    api = viewer.get("/api/metrics/jobs/resize?range=forever")

    assert page.status_code == 400 and "1h, 24h, 7d" in page.text
    assert api.status_code == 400 and "1h, 24h, 7d" in api.json()["error"]


def test_unknown_names_and_kinds_are_404(viewer, snapshots):
    snapshots.record([snapshot("job", "resize", ago(minutes=1))])

    assert viewer.get("/metrics/jobs/nobody").status_code == 404
    assert viewer.get("/metrics/queues/resize").status_code == 404
    assert viewer.get("/metrics/workers").status_code == 404
    assert viewer.get("/api/metrics/workers").json()["error"].startswith("There are metrics")


def test_names_are_escaped(viewer, snapshots):
    name = "<script>alert(1)</script>"
    snapshots.record([snapshot("job", name, ago(minutes=1), throughput=1.0)])

    listing = viewer.get("/metrics/jobs")
    detail = viewer.get("/metrics/jobs/%3Cscript%3Ealert(1)%3C/script%3E")

    assert detail.status_code == 200
    for page in (listing, detail):
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_seven_days_of_snapshots_are_downsampled_with_their_peak(viewer, snapshots):
    now = datetime.now(UTC)
    rows = [
        snapshot(
            "job", "resize", now - timedelta(minutes=5 * n, seconds=1), throughput=10.0, processed=1
        )
        for n in range(2016)
    ]
    rows[700] = snapshot("job", "resize", rows[700].taken_at, throughput=500.0, processed=1)
    snapshots.record(rows)

    body = viewer.get("/api/metrics/jobs/resize?range=7d").json()
    page = viewer.get("/metrics/jobs/resize?range=7d")

    series = body["series"]["throughput"]
    assert len(series) <= MAX_POINTS
    assert sum(point["count"] for point in series) == body["snapshots"] == 2016
    assert max(point["peak"] for point in series) == 500.0
    assert body["processed"] == 2016
    assert page.text.count('class="chart-mark') <= 2 * MAX_POINTS
    assert "peak 500.0 jobs/min" in page.text


def test_the_api_lists_latest_figures_and_series(viewer, snapshots):
    at = ago(minutes=2)
    snapshots.record([snapshot("queue", "emails", at, throughput=4.5, wait_p95_ms=80.0)])

    listing = viewer.get("/api/metrics/queues").json()
    series = viewer.get("/api/metrics/queues/emails?range=1h").json()

    [row] = listing["data"]
    assert row["name"] == "emails" and row["latest"]["throughput"] == 4.5
    assert listing["taken_at"] == at.isoformat()
    assert (series["kind"], series["name"], series["range"]) == ("queues", "emails", "1h")
    assert series["series"]["wait_p95_ms"] == [
        {"at": at.isoformat(), "value": 80.0, "peak": 80.0, "count": 1, "until": None}
    ]


def test_metrics_need_sign_in(client):
    assert client.get("/metrics/jobs").status_code == 303
    assert client.get("/api/metrics/jobs").status_code == 401
