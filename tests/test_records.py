"""Job records and their indexes: written by real dispatches and real workers, read back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis
from sqlalchemy import delete

from core.job_record import JobIndex, JobStatus
from core.keys import Keys
from core.payload import now_ms
from core.queue import PushPart, RedisQueue
from core.record_pages import scan_page
from core.recording import Recorder
from core.records import JobRecordRepository, PushedJob
from core.retrying import retry_failed
from core.runtime import Runtime
from core.settings import RecordSettings, load_settings
from tests import jobs
from tests.conftest import wait_until
from tests.test_queue import CountingConnection

WORKER_EXIT_S = 60


@pytest.fixture
def records(runtime: Runtime) -> JobRecordRepository:
    recorder = runtime.dispatcher.recorder()
    assert recorder is not None
    return recorder.records


@pytest.fixture
def work(start_worker):
    """Run a worker until the queues are empty; fail the test if it does not exit cleanly."""

    def run(*args: str) -> subprocess.Popen:
        process = start_worker(*args, "--stop-when-empty")
        assert process.wait(timeout=WORKER_EXIT_S) == 0, process.log_path.read_text()
        return process

    return run


def with_config(worker_env: dict[str, str], tmp_path: Path, text: str) -> Path:
    """Workers started after this read ``text`` as their skyline.toml."""
    config = tmp_path / "records.toml"
    config.write_text(text)
    worker_env["SKYLINE_CONFIG"] = str(config)
    return config


# --- pushes -----------------------------------------------------------------------------


def test_a_push_records_the_job_as_pending(runtime, records, redis_client):
    before = now_ms()
    job_id = jobs.noop.options(queue="mail").dispatch(7)

    record = records.get(job_id)
    assert record is not None
    assert (record.id, record.name, record.queue, record.connection) == (
        job_id,
        "tests.jobs.noop",
        "mail",
        "redis",
    )
    assert (record.status, record.attempts, record.tags) == (JobStatus.PENDING, 0, [])
    assert before <= record.pushed_at <= record.available_at <= now_ms()
    queued = redis_client.lindex(runtime.dispatcher.keys.queue("mail").ready, 0)
    assert record.payload == queued.decode()
    assert 0 < redis_client.ttl(runtime.dispatcher.keys.job_record(job_id)) <= 3600
    counts = records.counts()
    assert (counts[JobIndex.RECENT], counts[JobIndex.PENDING]) == (1, 1)


def test_a_delayed_job_keeps_its_record_until_a_pending_window_after_it_is_due(
    runtime, records, redis_client
):
    job_id = jobs.noop.options(delay=7200).dispatch()

    ttl = redis_client.ttl(runtime.dispatcher.keys.job_record(job_id))
    assert 7200 + 3600 - 5 <= ttl <= 7200 + 3600
    assert [r.id for r in records.page(JobIndex.PENDING).records] == [job_id]


def test_a_bulk_push_and_its_records_take_one_round_trip(redis_url, redis_client):
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    keys = Keys("skyline:")
    queue, recorder = RedisQueue(client, keys), Recorder.open(client, keys, RecordSettings())

    def part(first: int, count: int) -> PushPart:
        bodies = [body(f"job-{n}") for n in range(first, first + count)]
        pushed = [PushedJob(b, f"payload of {b['id']}", now_ms()) for b in bodies]
        return {"default": [p.payload for p in pushed]}, {}, recorder.pushed(pushed)

    queue.push_parts([part(0, 1)])  # connects and loads the scripts
    CountingConnection.writes = []
    queue.push_parts([part(1, 1000), part(1001, 1000), part(2001, 500)])

    assert len(CountingConnection.writes) == 1
    assert redis_client.llen(keys.queue("default").ready) == 2501
    assert redis_client.zcard(keys.job_index("recent")) == 2501
    pool.disconnect()


def body(job_id: str) -> dict:
    fields = {"id": job_id, "job": "j", "queue": "default", "connection": "redis"}
    return fields | {"tags": [], "pushed_at": now_ms()}


# --- what workers write -------------------------------------------------------------------


def test_a_completed_job_leaves_pending_for_completed(runtime, records, work):
    job_id = jobs.noop.dispatch(1)
    work()

    record = records.get(job_id)
    assert record.status is JobStatus.COMPLETED
    assert record.attempts == 1
    assert record.pushed_at <= record.reserved_at <= record.completed_at <= now_ms()
    assert record.runtime_ms is not None and record.runtime_ms >= 0
    assert record.failed_at is None and record.exception is None
    counts = records.counts()
    assert (counts[JobIndex.PENDING], counts[JobIndex.COMPLETED]) == (0, 1)
    assert [r.id for r in records.page(JobIndex.COMPLETED).records] == [job_id]


def test_a_job_that_fails_for_good_is_recorded_with_its_exception(runtime, records, work):
    job_id = jobs.always_fails.dispatch(4)
    work()

    record = records.get(job_id)
    assert record.status is JobStatus.FAILED
    assert record.attempts == 3
    assert record.exception == "ValueError: always fails 4"
    assert record.reserved_at <= record.failed_at
    assert record.completed_at is None
    counts = records.counts()
    assert counts[JobIndex.FAILED] == counts[JobIndex.RECENT_FAILED] == 1
    assert (counts[JobIndex.PENDING], counts[JobIndex.COMPLETED]) == (0, 0)


def test_a_released_job_waits_as_released_until_it_is_due(runtime, records, work):
    job_id = jobs.always_fails.options(backoff=[600]).dispatch(1)
    work()

    record = records.get(job_id)
    assert record.status is JobStatus.RELEASED
    assert record.attempts == 1
    assert 600_000 <= record.available_at - record.reserved_at < 610_000
    assert [r.id for r in records.page(JobIndex.PENDING).records] == [job_id]
    assert records.counts()[JobIndex.COMPLETED] == 0


def test_a_retried_job_and_its_retry_link_to_each_other(runtime, records, work):
    failed_id = jobs.fails_itself.dispatch()
    work()
    stored = runtime.failed_store.get(failed_id)

    retry_id = retry_failed(stored, runtime.dispatcher, runtime.failed_store)

    assert records.get(failed_id).retried_by == [retry_id]
    retry = records.get(retry_id)
    assert (retry.retried_from, retry.status, retry.name) == (
        failed_id,
        JobStatus.PENDING,
        "tests.jobs.fails_itself",
    )
    work()
    assert records.get(retry_id).status is JobStatus.FAILED


def test_a_long_running_job_shows_as_reserved_while_it_runs(runtime, records, start_worker):
    job_id = jobs.slow.dispatch(1, 2.0)
    worker = start_worker("--stop-when-empty")

    running = wait_until(lambda: records.get(job_id).status is JobStatus.RESERVED)
    assert running
    assert worker.wait(timeout=WORKER_EXIT_S) == 0
    record = records.get(job_id)
    assert record.status is JobStatus.COMPLETED
    assert 2000 <= record.runtime_ms < 4000


def test_a_record_that_expired_is_not_brought_back_half_made(runtime, records, work):
    job_id = jobs.noop.dispatch(1)
    runtime.queue().client.delete(runtime.dispatcher.keys.job_record(job_id))
    work()

    assert records.get(job_id) is None
    assert records.counts()[JobIndex.COMPLETED] == 0


# --- silencing ---------------------------------------------------------------------------


def test_silenced_jobs_and_tags_are_recorded_as_silenced(
    runtime, records, work, worker_env, tmp_path
):
    with_config(
        worker_env,
        tmp_path,
        '[records]\nsilenced = ["tests.jobs.noop"]\nsilenced_tags = ["quiet"]\n',
    )
    by_name = jobs.noop.dispatch(1)
    by_tag = jobs.bare_noop.options(tags=["quiet"]).dispatch()
    loud = jobs.bare_noop.dispatch()
    failing = jobs.fails_itself.options(tags=["quiet"]).dispatch()
    work()

    assert records.get(by_name).status is JobStatus.SILENCED
    assert records.get(by_tag).status is JobStatus.SILENCED
    assert records.get(loud).status is JobStatus.COMPLETED
    assert records.get(failing).status is JobStatus.FAILED  # silencing hides successes only
    assert {r.id for r in records.page(JobIndex.SILENCED).records} == {by_name, by_tag}
    assert [r.id for r in records.page(JobIndex.COMPLETED).records] == [loud]


# --- tags and monitoring --------------------------------------------------------------------


CUSTOMER_IDS = (7101, 7102)


@pytest.fixture
def customers(database_url: str):
    sessions = jobs.use_database(database_url)
    with sessions.begin() as session:
        session.execute(delete(jobs.Customer).where(jobs.Customer.id.in_(CUSTOMER_IDS)))
        session.add_all([jobs.Customer(id=n, name=f"customer {n}") for n in CUSTOMER_IDS])
    with sessions() as session:
        yield [session.get(jobs.Customer, n) for n in CUSTOMER_IDS]
    with sessions.begin() as session:
        session.execute(delete(jobs.Customer).where(jobs.Customer.id.in_(CUSTOMER_IDS)))


def test_models_in_the_arguments_tag_the_job(runtime, records, customers, work):
    ada, _ = customers
    job_id = jobs.greet_customer.options(tags=["vip"]).dispatch(ada)

    assert records.get(job_id).tags == ["vip", "Customer:7101"]
    work()
    assert records.get(job_id).status is JobStatus.COMPLETED


def test_a_class_job_tags_itself(runtime, records):
    job_id = jobs.TaggedGreeting("Ada").dispatch()
    plain = jobs.Greeting("Bob").dispatch()

    assert records.get(job_id).tags == ["greeting:Ada"]
    assert records.get(plain).tags == []


def test_a_monitored_tag_keeps_its_jobs_for_the_monitored_window(
    runtime, records, customers, work, redis_client
):
    ada, bob = customers
    records.monitor("Customer:7101")
    watched = jobs.greet_customer.dispatch(ada)
    unwatched = jobs.greet_customer.dispatch(bob)
    work()

    assert records.monitored() == {"Customer:7101": 1}
    page = records.page(JobIndex.MONITORED, tag="Customer:7101")
    assert [r.id for r in page.records] == [watched]
    assert page.records[0].status is JobStatus.COMPLETED
    keys = runtime.dispatcher.keys
    assert redis_client.ttl(keys.job_record(watched)) > 6 * 24 * 3600
    assert redis_client.ttl(keys.job_record(unwatched)) <= 3600

    records.unmonitor("Customer:7101")
    assert records.monitored() == {}
    assert not redis_client.exists(keys.monitored_jobs("Customer:7101"))


def test_a_list_filtered_by_a_monitored_tag_reads_the_tag_s_own_index(
    runtime, records, work, redis_client
):
    records.monitor("vip")
    done = jobs.bare_noop.options(tags=["vip"]).dispatch()
    work()
    waiting = jobs.bare_noop.options(tags=["vip"]).dispatch()
    plain = jobs.bare_noop.dispatch()
    keys = runtime.dispatcher.keys
    redis_client.delete(keys.job_index("completed"), keys.job_index("pending"))

    completed = records.page(JobIndex.COMPLETED, tag="vip").records
    pending = records.page(JobIndex.PENDING, tag="vip").records
    assert [r.id for r in completed] == [done]  # found without the completed list
    assert [r.id for r in pending] == [waiting]
    assert plain not in {r.id for r in records.page(JobIndex.RECENT, tag="vip").records}


# --- reading --------------------------------------------------------------------------------


def test_pages_go_newest_first_and_filter(runtime, records):
    mail = [jobs.noop.options(queue="mail").dispatch(n) for n in range(5)]
    other = [jobs.bare_noop.options(tags=["x"]).dispatch() for _ in range(3)]

    first = records.page(JobIndex.RECENT, limit=4)
    rest = records.page(JobIndex.RECENT, limit=4, before=first.next_before)
    assert [r.id for r in first.records + rest.records] == (mail + other)[::-1]
    assert rest.next_before is None  # nothing older

    assert [r.id for r in records.page(JobIndex.RECENT, queue="mail").records] == mail[::-1]
    named = records.page(JobIndex.PENDING, job_name="tests.jobs.bare_noop")
    assert [r.id for r in named.records] == other[::-1]
    assert [r.id for r in records.page(JobIndex.RECENT, tag="x").records] == other[::-1]


def test_a_page_never_splits_jobs_of_the_same_millisecond(redis_client):
    redis_client.zadd("ids", {f"{n:02}": 1000 + n // 4 for n in range(12)})  # fours share a score

    seen, before = [], None
    while True:
        page = scan_page(redis_client, "ids", 0, before, 3, lambda ids: ids, lambda _: True)
        seen += page.records
        if page.next_before is None:
            break
        assert len(page.records) == 4  # three asked for, and the fourth of the same score
        before = page.next_before
    assert sorted(seen) == sorted(f"{n:02}".encode() for n in range(12))
    assert len(seen) == 12


def test_the_records_table_is_read_from_skyline_toml(tmp_path):
    config = tmp_path / "skyline.toml"
    config.write_text("[records]\nenabled = false\ncompleted_s = 600\nsilenced = ['a.b']\n")

    settings = load_settings(config, environ={})

    assert (settings.records.enabled, settings.records.completed_s) == (False, 600)
    assert settings.records.silenced == ["a.b"]
    assert settings.records.failed_s == 7 * 24 * 3600


# --- bounded memory ---------------------------------------------------------------------------


def short_windows(settings, seconds: int) -> RecordSettings:
    windows = {f"{name}_s": seconds for name in ("recent", "pending", "completed", "silenced")}
    windows |= {f"{name}_s": seconds for name in ("failed", "recent_failed", "monitored")}
    return settings.records.model_copy(update=windows)


def test_trimming_frees_the_memory_of_the_indexes(runtime, records, redis_client, work):
    [jobs.bare_noop.dispatch() for _ in range(300)]
    work()
    keys = runtime.dispatcher.keys
    indexes = [keys.job_index(index) for index in ("recent", "completed")]
    used = [redis_client.memory_usage(key) for key in indexes]
    assert all(size and size > 10_000 for size in used)

    pipe = redis_client.pipeline()
    records.trim(pipe, now_ms() + 3600 * 1000 + 1)
    pipe.execute()

    assert [redis_client.memory_usage(key) for key in indexes] == [None, None]
    for key in redis_client.scan_iter(match=keys.job_record("*")):
        assert 0 < redis_client.ttl(key) <= 3600  # every record goes by itself


def test_records_and_indexes_expire_back_to_an_empty_redis(settings, redis_client):
    runtime = Runtime(settings.model_copy(update={"records": short_windows(settings, 1)}))
    recorder = runtime.dispatcher.recorder()
    keys = runtime.dispatcher.keys
    empty = redis_client.info("memory")["used_memory"]
    runtime.dispatcher.dispatch([jobs.bare_noop.prepare() for _ in range(300)])
    runtime.queue().clear("default")
    full = redis_client.info("memory")["used_memory"]
    assert redis_client.dbsize() == 300 + 4  # records, recent, pending, counters, queue names

    assert wait_until(lambda: redis_client.dbsize() == 4, timeout_s=10)  # the TTLs ran out
    pipe = redis_client.pipeline()
    recorder.records.trim(pipe, now_ms())
    pipe.execute()

    assert redis_client.dbsize() == 2
    assert redis_client.exists(keys.metrics_interval(), keys.measured_queues()) == 2
    assert redis_client.info("memory")["used_memory"] - empty < (full - empty) / 20


# --- unreadable records ---------------------------------------------------------------------


def test_an_unreadable_record_reads_as_missing_and_is_left_out_of_pages(
    runtime, records, redis_client
):
    good = jobs.noop.dispatch(1)
    broken = jobs.noop.dispatch(2)
    strange = jobs.noop.dispatch(3)
    keys = runtime.dispatcher.keys
    redis_client.hset(keys.job_record(broken), "payload", "{not json")
    redis_client.hset(keys.job_record(strange), "status", "exploded")

    assert records.get(broken) is None and records.get(strange) is None
    assert [r.id for r in records.page(JobIndex.PENDING).records] == [good]
    assert [r and r.id for r in records.get_many([strange, good, "never"])] == [None, good, None]
