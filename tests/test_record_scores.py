"""Index scores of job records: one exact whole number per job, in the order the writes ran,
even for jobs of one millisecond pushed by several dispatchers; windows and cursors follow."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from core.job_record import SCORES_PER_MS, JobIndex, score_at
from core.keys import Keys
from core.payload import Payload, now_ms
from core.pipelines import execute
from core.records import JobRecordRepository, PushedJob
from core.settings import RecordSettings

KEYS = Keys("skyline:")
DISPATCHERS = 4


@pytest.fixture
def dispatchers(redis_url: str):
    """Repositories on connections of their own, as in separate dispatching processes."""
    clients = [redis.Redis.from_url(redis_url) for _ in range(DISPATCHERS)]
    yield [JobRecordRepository(c, KEYS, RecordSettings()) for c in clients]
    for client in clients:
        client.close()


def job(job_id: str, pushed_at: int, tags: list[str] | None = None) -> PushedJob:
    body = {"id": job_id, "job": "j", "queue": "default", "connection": "redis"}
    body |= {"tags": tags or [], "pushed_at": pushed_at}
    payload = json.dumps({"body": json.dumps(body), "attempts": 0, "available_at": pushed_at})
    return PushedJob(body, payload, pushed_at)


def push(records: JobRecordRepository, pushed: list[PushedJob]) -> None:
    pipe = records.client.pipeline(transaction=False)
    records.pushed(pipe, pushed)
    execute(pipe)


def scores(client: redis.Redis, key: str) -> dict[str, float]:
    """Member -> score, lowest score first."""
    return {m.decode(): s for m, s in client.zrange(key, 0, -1, withscores=True)}


def paged(records: JobRecordRepository, index: JobIndex, limit: int, **kw) -> list[str]:
    """Every id of a list, newest first, read page by page through the cursor."""
    ids, before = [], None
    while True:
        page = records.page(index, before=before, limit=limit, **kw)
        ids += [record.id for record in page.records]
        if page.next_before is None:
            return ids
        assert isinstance(page.next_before, int)
        before = page.next_before


def test_jobs_of_one_millisecond_from_several_dispatchers_list_in_push_order(
    dispatchers, redis_client
):
    dispatchers[0].monitor("vip")
    ms, order = now_ms(), []
    for n in range(30):  # more calls per dispatcher than the old place counter's ten
        records = dispatchers[n % DISPATCHERS]
        batch = [job(f"job-{n:02}-{k}", ms, ["vip"]) for k in range(n % 3 + 1)]
        push(records, batch)
        order += [j.body["id"] for j in batch]

    for index in (JobIndex.RECENT, JobIndex.PENDING):
        assert paged(dispatchers[1], index, limit=7) == order[::-1]
        scored = scores(redis_client, KEYS.job_index(index))
        assert list(scored) == order
        assert [int(s) for s in scored.values()] == list(range(score_at(ms), score_at(ms) + 60))
    assert paged(dispatchers[2], JobIndex.MONITORED, limit=5, tag="vip") == order[::-1]
    assert list(scores(redis_client, KEYS.monitored_jobs("vip"))) == order


def test_concurrent_pushers_take_unique_exact_scores_and_pages_miss_none(dispatchers, redis_client):
    ms, per_dispatcher = now_ms(), 60
    start = threading.Barrier(DISPATCHERS)

    def pushing(d: int) -> None:
        start.wait()
        for n in range(per_dispatcher):
            push(dispatchers[d], [job(f"d{d}-{n:02}", ms)])

    threads = [threading.Thread(target=pushing, args=(d,)) for d in range(DISPATCHERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    scored = scores(redis_client, KEYS.job_index(JobIndex.RECENT))
    assert len(set(scored.values())) == len(scored) == DISPATCHERS * per_dispatcher
    assert all(s == int(s) and int(s) // SCORES_PER_MS == ms for s in scored.values())
    for d in range(DISPATCHERS):  # each dispatcher's jobs keep the order it pushed them in
        assert [i for i in scored if i.startswith(f"d{d}-")] == [
            f"d{d}-{n:02}" for n in range(per_dispatcher)
        ]
    assert paged(dispatchers[0], JobIndex.RECENT, limit=9) == list(scored)[::-1]


def test_a_millisecond_s_places_used_up_spill_into_the_next_in_order(dispatchers, redis_client):
    ms = now_ms() - 10
    crowd = [job(f"crowd-{n:04}", ms) for n in range(1500)]  # two script calls
    push(dispatchers[0], crowd)
    push(dispatchers[1], [job("next-ms", ms + 1), job("same-ms-late", ms)])

    scored = scores(redis_client, KEYS.job_index(JobIndex.RECENT))
    expected = [j.body["id"] for j in crowd] + ["next-ms", "same-ms-late"]
    assert list(scored) == expected
    assert [int(s) for s in scored.values()] == list(range(score_at(ms), score_at(ms) + 1502))
    assert paged(dispatchers[2], JobIndex.RECENT, limit=200) == expected[::-1]


def test_a_released_job_takes_a_place_of_its_own_among_pushed_ones(dispatchers, redis_client):
    ms = now_ms()
    first = job("first", ms)
    push(dispatchers[0], [first, job("second", ms)])
    payload = Payload(first.payload, first.body, json.dumps(first.body), "", 1, reserved_at=ms)
    pipe = redis_client.pipeline(transaction=False)
    dispatchers[1].released(pipe, payload, available_at=ms, attempts=1, runtime_ms=5.0)
    execute(pipe)

    pending = scores(redis_client, KEYS.job_index(JobIndex.PENDING))
    assert pending == {"second": score_at(ms) + 1, "first": score_at(ms) + 2}


def test_trimming_by_age_keeps_exactly_the_window(dispatchers, redis_client):
    records = dispatchers[0]
    now = now_ms()
    oldest = now - records.settings.recent_s * 1000
    push(records, [job("too-old-a", oldest - 1), job("too-old-b", oldest - 1)])
    push(records, [job("oldest-a", oldest), job("oldest-b", oldest), job("new", now)])

    pipe = redis_client.pipeline(transaction=False)
    records.trim(pipe, now)
    execute(pipe)

    assert list(scores(redis_client, KEYS.job_index(JobIndex.RECENT))) == [
        "oldest-a",
        "oldest-b",
        "new",
    ]


def test_a_push_drops_monitored_jobs_older_than_the_monitored_window(dispatchers, redis_client):
    records = dispatchers[0]
    records.monitor("vip")
    stale = now_ms() - records.settings.monitored_s * 1000 - 5000
    push(records, [job("stale", stale, ["vip"])])
    push(dispatchers[1], [job("fresh", now_ms(), ["vip"])])

    assert list(scores(redis_client, KEYS.monitored_jobs("vip"))) == ["fresh"]
    assert records.monitored() == {"vip": 1}


def test_entries_scored_in_plain_milliseconds_are_not_listed_and_the_trim_drops_them(
    dispatchers, redis_client
):
    """Indexes written before scores counted places hold ms with a fraction: far below any
    window now, so they are never listed or counted, and the next trim removes them."""
    records, ms = dispatchers[0], now_ms()
    index = KEYS.job_index(JobIndex.RECENT)
    push(records, [job("stale-format", ms)])
    redis_client.zadd(index, {"stale-format": f"{ms}.0003"})
    push(records, [job("new", ms)])

    assert paged(records, JobIndex.RECENT, limit=10) == ["new"]
    assert records.counts()[JobIndex.RECENT] == 1
    pipe = redis_client.pipeline(transaction=False)
    records.trim(pipe, ms)
    execute(pipe)
    assert list(scores(redis_client, index)) == ["new"]
