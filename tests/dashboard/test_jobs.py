"""The job lists and the job page: real jobs pushed, run by a real worker, read back as
pages and as JSON."""

from __future__ import annotations

import html
import json
import re

import pytest

from core.batches import batch
from core.execution import WorkerDefaults
from core.job_record import JobIndex, score_at
from core.payload import now_ms, parse
from core.registry import registry
from core.retrying import retry_failed
from core.runtime import Runtime
from core.worker import Worker, WorkerOptions
from tests import jobs

ALWAYS_FAILS = jobs.always_fails.options(backoff=0)


def work(runtime: Runtime, *queues: str) -> None:
    """Run a worker in this process until the queues are empty."""
    options = WorkerOptions(
        queues=queues or ("default",), stop_when_empty=True, defaults=WorkerDefaults(backoff=0)
    )
    recorder = runtime.dispatcher.recorder()
    keys = runtime.settings.signing_keys()
    worker = Worker(
        runtime.queue(), lambda: runtime.failed_store, registry, keys, options, None, recorder
    )
    assert worker.run(handle_signals=False) == 0


def queued(runtime: Runtime, queue: str = "default") -> list:
    """The payloads waiting on a queue's ready list, verified."""
    raws = runtime.queue().client.lrange(runtime.dispatcher.keys.queue(queue).ready, 0, -1)
    return [parse(raw, runtime.settings.signing_keys()) for raw in raws]


def failed_ids(runtime: Runtime, **filters) -> list[int]:
    return [r.id for r in runtime.failed_store.list(**filters)]


def listed(page_text: str) -> list[str]:
    """Full job ids of the rows of a list page, in order."""
    return re.findall(r'<a class="mono" href="/job/[^"]+" title="([^"]+)">', page_text)


@pytest.fixture
def viewer(client, sign_in):
    sign_in(client, "viewer")
    return client


# --- the lists --------------------------------------------------------------------------


def test_the_pending_list_shows_what_was_pushed(runtime, viewer):
    job_id = jobs.noop.options(queue="mail", tags=["vip"]).dispatch(7)

    page = viewer.get("/jobs/pending")

    assert page.status_code == 200
    assert listed(page.text) == [job_id]
    assert f'title="{job_id}">{job_id[:8]}</a>' in page.text
    assert "tests.jobs.noop" in page.text and ">mail<" in page.text and ">vip<" in page.text
    assert re.search(
        r'href="/jobs/pending"\s+aria-current="page">Pending<span class="count">'
        r'<span title="1">1</span>',
        page.text,
    )


def test_the_completed_list_shows_what_a_worker_completed(runtime, viewer):
    done = jobs.noop.dispatch(1)
    waiting = jobs.noop.options(queue="later").dispatch(2)
    work(runtime)

    page = viewer.get("/jobs/completed")

    assert listed(page.text) == [done]
    assert listed(viewer.get("/jobs/pending").text) == [waiting]
    assert "completed" in page.text and " ms</span>" in page.text  # the runtime


def test_the_silenced_list_shows_silenced_successes(settings, runtime, viewer):
    records = settings.records.model_copy(update={"silenced": ["tests.jobs.noop"]})
    quiet = Runtime(settings.model_copy(update={"records": records}))
    silenced = quiet.dispatcher.dispatch([jobs.noop.prepare(1)])[0]
    loud = quiet.dispatcher.dispatch([jobs.bare_noop.prepare()])[0]
    work(quiet)

    assert listed(viewer.get("/jobs/silenced").text) == [silenced]
    assert listed(viewer.get("/jobs/completed").text) == [loud]


def test_the_failed_list_shows_failed_jobs_from_the_store(runtime, viewer):
    always = ALWAYS_FAILS.dispatch(7)
    itself = jobs.fails_itself.dispatch()
    work(runtime)

    page = viewer.get("/jobs/failed")

    assert set(listed(page.text)) == {always, itself}
    assert "ValueError: always fails 7" in page.text
    assert "the job gave up" in page.text
    assert re.search(r'<td class="num"><span title="3">3</span></td>', page.text)  # attempts
    assert 'Failed<span class="count"><span title="2">2</span>' in page.text


def test_a_viewer_sees_no_retry_or_forget_buttons(runtime, viewer):
    ALWAYS_FAILS.dispatch(1)
    work(runtime)

    page = viewer.get("/jobs/failed")

    assert "Retry selected" not in page.text and "/forget" not in page.text


def test_lists_filter_by_queue_job_and_tag(runtime, viewer):
    mail = jobs.noop.options(queue="mail").dispatch(1)
    tagged = jobs.noop.options(tags=["vip"]).dispatch(2)
    bare = jobs.bare_noop.dispatch()

    assert listed(viewer.get("/jobs/pending?queue=mail").text) == [mail]
    assert listed(viewer.get("/jobs/pending?tag=vip").text) == [tagged]
    assert listed(viewer.get("/jobs/pending?job=tests.jobs.bare_noop").text) == [bare]
    empty = viewer.get("/jobs/pending?queue=nowhere")
    assert listed(empty.text) == [] and "No pending job matches this filter" in empty.text


def test_the_failed_list_filters_by_queue_job_and_exception_text(runtime, viewer):
    always = ALWAYS_FAILS.dispatch(7)
    other = jobs.fails_itself.options(queue="other").dispatch()
    work(runtime, "default", "other")

    assert listed(viewer.get("/jobs/failed?queue=other").text) == [other]
    assert listed(viewer.get("/jobs/failed?job=tests.jobs.always_fails").text) == [always]
    assert listed(viewer.get("/jobs/failed?q=ALWAYS+fails").text) == [always]
    assert listed(viewer.get("/jobs/failed?q=100%25").text) == []  # % is no wildcard


def test_a_redis_list_pages_by_cursor(runtime, viewer):
    ids = [jobs.noop.dispatch(n) for n in range(5)]

    first = viewer.get("/jobs/pending?per_page=2")
    assert listed(first.text) == ids[::-1][:2]
    older = re.search(r'href="(/jobs/pending\?[^"]+)" rel="next"', first.text).group(1)
    second = viewer.get(html.unescape(older))
    assert listed(second.text) == [ids[2], ids[1]]
    assert "Newest</a>" in second.text

    api = viewer.get("/api/jobs/pending", params={"per_page": 2}).json()
    assert isinstance(api["page"]["next_before"], int)  # a score, exact in JSON
    rest = viewer.get("/api/jobs/pending", params={"before": api["page"]["next_before"]}).json()
    assert [row["id"] for row in api["data"] + rest["data"]] == ids[::-1]
    assert rest["page"]["next_before"] is None


def test_the_first_page_of_a_redis_list_refreshes_itself(runtime, viewer):
    job_id = jobs.noop.dispatch(1)

    page = viewer.get("/jobs/pending?queue=default")
    partial = viewer.get("/jobs/pending?queue=default", headers={"HX-Request": "true"})
    older = viewer.get("/jobs/pending?before=1", headers={"HX-Request": "true"})

    assert 'hx-get="/jobs/pending?queue=default" hx-trigger="every' in page.text
    assert partial.text.startswith('<div id="jobs-live"') and listed(partial.text) == [job_id]
    assert "<html" not in partial.text and "HX-Request" in partial.headers["vary"]
    assert "hx-trigger" not in older.text  # an older page stays as it is


def test_the_failed_list_pages_by_number(runtime, viewer):
    for n in range(3):
        ALWAYS_FAILS.dispatch(n)
    work(runtime)
    newest_first = [r.uuid for r in runtime.failed_store.list()]

    second = viewer.get("/jobs/failed?per_page=2&page=2")

    assert listed(second.text) == newest_first[2:]
    assert "Page 2 of 2" in second.text
    body = viewer.get("/api/jobs/failed?per_page=2").json()
    assert [row["id"] for row in body["data"]] == newest_first[:2]
    assert body["page"] == {"number": 1, "per_page": 2, "total": 3, "pages": 2}


@pytest.mark.parametrize(
    "query",
    [
        "/jobs/pending?before=yesterday",
        "/jobs/pending?before=nan",
        "/jobs/completed?before=1795458876236.0001",
        "/jobs/pending?per_page=0",
        "/jobs/failed?page=two",
        "/jobs/pending?queue=a%00b",
        "/jobs/pending?job=" + "x" * 256,
        "/jobs/failed?tag=vip",
        "/jobs/completed?q=boom",
        "/api/jobs/pending?before=nan-ish",
        "/api/jobs/failed?tag=vip",
    ],
)
def test_bad_query_parameters_are_a_400_that_says_why(viewer, query):
    response = viewer.get(query)
    assert response.status_code == 400
    message = response.json()["error"] if query.startswith("/api/") else response.text
    assert re.search(r"must|filters by|longer than", message), message


def test_an_unknown_list_is_a_404(viewer):
    response = viewer.get("/jobs/running")
    assert response.status_code == 404
    assert "pick pending, completed, silenced or failed" in response.text
    assert viewer.get("/api/jobs/running").status_code == 404


def test_a_malformed_record_does_not_break_the_list(runtime, viewer, redis_client):
    good = jobs.noop.dispatch(1)
    broken = jobs.noop.dispatch(2)
    keys = runtime.dispatcher.keys
    redis_client.hset(keys.job_record(broken), "payload", "{not json")
    redis_client.zadd(keys.job_index(JobIndex.PENDING), {"ghost": score_at(now_ms())})
    redis_client.hset(keys.job_record("ghost"), mapping={"status": "exploded", "payload": "{}"})

    page = viewer.get("/jobs/pending")

    assert page.status_code == 200
    assert listed(page.text) == [good]
    assert viewer.get(f"/job/{broken}").status_code == 404
    assert [row["id"] for row in viewer.get("/api/jobs/pending").json()["data"]] == [good]


def test_the_api_lists_rows_with_their_fields(runtime, viewer):
    job_id = jobs.always_fails.options(queue="mail", backoff=0).dispatch(3)
    work(runtime, "mail")

    [row] = viewer.get("/api/jobs/failed").json()["data"]

    assert row["id"] == job_id
    assert (row["name"], row["queue"], row["status"], row["attempts"]) == (
        "tests.jobs.always_fails",
        "mail",
        "failed",
        3,
    )
    assert row["exception"] == "ValueError: always fails 3"
    assert row["failed_id"] == runtime.failed_store.get(job_id).id
    assert re.match(r"\d{4}-\d\d-\d\dT", row["finished_at"])


# --- the job page ---------------------------------------------------------------------------


def test_the_job_page_shows_payload_timeline_and_attempts(runtime, viewer):
    job_id = jobs.noop.options(queue="mail").dispatch(42)
    work(runtime, "mail")

    page = viewer.get(f"/job/{job_id}")

    assert page.status_code == 200
    payload = re.search(r'<pre class="code">(.*?)</pre>', page.text, re.S).group(1)
    document = json.loads(html.unescape(payload))
    assert document["body"]["args"] == [42] and document["body"]["id"] == job_id
    timeline = re.search(r'<ol class="timeline">(.*?)</ol>', page.text, re.S).group(1)
    assert re.findall(r"<div>([^<]+)</div>", timeline) == [
        "Pushed",
        "Reserved (attempt 1)",
        "Completed",
    ]
    assert 'badge-ok">completed' in page.text
    body = viewer.get(f"/api/job/{job_id}").json()
    assert (body["status"], body["attempts"], body["expired"]) == ("completed", 1, False)
    assert [m["label"] for m in body["timeline"]] == ["Pushed", "Reserved (attempt 1)", "Completed"]


def test_a_failed_job_page_shows_exception_traceback_and_actions(runtime, client, sign_in):
    sign_in(client, "operator")
    job_id = ALWAYS_FAILS.dispatch(5)
    work(runtime)
    failed_id = runtime.failed_store.get(job_id).id

    page = client.get(f"/job/{job_id}")

    assert "ValueError: always fails 5" in page.text
    assert "Traceback (most recent call last)" in page.text
    assert f'action="/jobs/failed/{failed_id}/retry"' in page.text
    assert f'action="/jobs/failed/{failed_id}/forget"' in page.text


def test_a_failed_job_whose_record_expired_is_read_from_the_failed_store(runtime, viewer):
    job_id = ALWAYS_FAILS.dispatch(6)
    work(runtime)
    runtime.queue().client.delete(runtime.dispatcher.keys.job_record(job_id))

    page = viewer.get(f"/job/{job_id}")

    assert page.status_code == 200
    assert "The Redis record of this job has expired" in page.text
    assert "ValueError: always fails 6" in page.text
    assert viewer.get(f"/api/job/{job_id}").json()["expired"] is True


def test_an_unknown_job_is_a_404(viewer):
    response = viewer.get("/job/no-such-job")
    assert response.status_code == 404
    assert "No job &#39;no-such-job&#39;" in response.text
    assert "error" in viewer.get("/api/job/no-such-job").json()


def test_a_retried_job_and_its_retry_link_to_each_other(runtime, viewer):
    failed_id = jobs.fails_itself.dispatch()
    work(runtime)
    retry_id = retry_failed(
        runtime.failed_store.get(failed_id), runtime.dispatcher, runtime.failed_store
    )

    assert f'href="/job/{retry_id}"' in viewer.get(f"/job/{failed_id}").text
    assert f'href="/job/{failed_id}"' in viewer.get(f"/job/{retry_id}").text


def test_a_batch_member_links_to_its_batch(runtime, viewer):
    created = batch([jobs.noop.prepare(1)]).dispatch()
    [member] = [r.id for r in runtime.dispatcher.recorder().records.page(JobIndex.PENDING).records]

    assert f'href="/batches/{created.id}"' in viewer.get(f"/job/{member}").text
