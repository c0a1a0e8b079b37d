"""Job middleware across real worker processes, and the Redis arithmetic behind it."""

from __future__ import annotations

import time

import pytest

import tests.middleware_jobs as mj
from core.keys import Keys
from core.limits import START_MARGIN_MS, admit, get_limit, limiter
from core.locks import Locks
from tests.conftest import output, wait_until
from tests.jobs import runs

APP = ("--app", "tests.middleware_jobs")
KEYS = Keys()


def start_workers(start_worker, count: int = 2) -> None:
    """One at a time: tests.jobs creates its table on import, which two processes would race."""
    for _ in range(count):
        worker = start_worker(*APP)
        wait_until(lambda w=worker: "processing" in output(w), message="a worker did not start")


def queue_drained(runtime, queue: str = "default") -> bool:
    return runtime.queue().sizes(queue) == {"ready": 0, "delayed": 0, "reserved": 0}


def most_starts_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t <= start + 1.0) for i, start in enumerate(times))


def overlapping(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def intervals(record_dir, key: str) -> list[tuple[float, float]]:
    ends = {r["n"]: r["t"] for r in runs(record_dir, "exclusive_end") if r["key"] == key}
    starts = [r for r in runs(record_dir, "exclusive_start") if r["key"] == key]
    return [(r["t"], ends[r["n"]]) for r in starts]


# -- window arithmetic (real Redis, passed clock) --------------------------------------------


def test_sliding_window_admits_up_to_the_limit_then_waits_for_the_oldest_start(redis_client):
    limit = limiter("unit-two-per-second", per_second=2)
    at = lambda now_ms: admit(redis_client, KEYS, limit, "all", now_ms)  # noqa: E731

    assert at(0) == 0
    assert at(100) == 0
    assert at(500) == (START_MARGIN_MS + 1000 - 500) / 1000
    assert at(START_MARGIN_MS + 999) == 0.001
    assert at(START_MARGIN_MS + 1000) == 0
    assert at(START_MARGIN_MS + 1001) == 0.099  # the start at 100 is now the oldest


def test_every_window_of_a_limit_is_enforced_and_the_longest_decides_the_wait(redis_client):
    limit = limiter("unit-minute", per_second=10, per_minute=3)

    assert [admit(redis_client, KEYS, limit, "all", t) for t in (0, 1000, 2000)] == [0, 0, 0]
    assert admit(redis_client, KEYS, limit, "all", 3000) == (START_MARGIN_MS + 60_000 - 3000) / 1000
    ttl_ms = redis_client.pttl(KEYS.rate_limit("unit-minute", "all", 60))
    assert 0 < ttl_ms <= 60_000 + START_MARGIN_MS


def test_limits_count_each_by_value_apart(redis_client):
    limit = limiter("unit-by", per_minute=1)

    assert admit(redis_client, KEYS, limit, "user-1", 0) == 0
    assert admit(redis_client, KEYS, limit, "user-1", 10) > 0
    assert admit(redis_client, KEYS, limit, "user-2", 10) == 0


def test_a_limiter_needs_a_window_of_at_least_one_job_and_a_known_name():
    with pytest.raises(ValueError, match="per_second"):
        limiter("unit-none")
    with pytest.raises(ValueError, match="at least 1"):
        limiter("unit-zero", per_minute=0)
    with pytest.raises(LookupError, match="no limiter named 'unit-missing'"):
        get_limit("unit-missing")


# -- RateLimited ----------------------------------------------------------------------------


def test_rate_limit_holds_across_two_workers_in_every_one_second_window(
    runtime, start_worker, record_dir
):
    jobs = 15
    start_workers(start_worker)
    runtime.dispatcher.dispatch([mj.limited.prepare(n=n) for n in range(jobs)])

    done = wait_until(lambda: len(runs(record_dir, "limited")) == jobs and runs(record_dir), 20)

    assert sorted(r["n"] for r in done) == list(range(jobs))
    assert most_starts_in_one_second([r["t"] for r in done]) <= mj.RATE_PER_S
    assert {r["attempt"] for r in done} == {1}, "a rate-limited release used up an attempt"
    assert len({r["pid"] for r in done}) == 2
    wait_until(lambda: queue_drained(runtime))


def test_rate_limited_release_counts_an_attempt_when_asked(runtime, start_worker, record_dir):
    runtime.dispatcher.dispatch([mj.limited_counted.prepare(n=n) for n in range(4)])
    start_worker(*APP)

    done = wait_until(lambda: len(runs(record_dir, "limited_counted")) == 4 and runs(record_dir))

    attempts = {r["n"]: r["attempt"] for r in done}
    assert (attempts[0], attempts[1]) == (1, 1)
    assert attempts[2] >= 2 and attempts[3] >= 2
    wait_until(lambda: queue_drained(runtime))


def test_dont_release_deletes_jobs_over_each_users_limit(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch(
        [mj.per_user.prepare(n=n, user_id=user) for user in (1, 2) for n in range(5)]
    )

    assert skyline("work", *APP, "--stop-when-empty").returncode == 0

    ran = [(r["user_id"], r["n"]) for r in runs(record_dir, "per_user")]
    assert ran == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert queue_drained(runtime)


# -- WithoutOverlapping ---------------------------------------------------------------------


def test_same_key_never_overlaps_across_two_workers_but_different_keys_do(
    runtime, start_worker, record_dir
):
    start_workers(start_worker)
    runtime.dispatcher.dispatch(
        [mj.Exclusive(key, n).prepare() for n in range(4) for key in ("a", "b")]
    )

    wait_until(lambda: len(runs(record_dir, "exclusive_end")) == 8, 20)

    a, b = intervals(record_dir, "a"), intervals(record_dir, "b")
    assert len(a) == len(b) == 4
    for same in (a, b):
        assert not any(overlapping(x, y) for i, x in enumerate(same) for y in same[i + 1 :])
    assert any(overlapping(x, y) for x in a for y in b)
    assert {r["attempt"] for r in runs(record_dir, "exclusive_start")} == {1}
    wait_until(lambda: queue_drained(runtime))


def test_dont_release_deletes_a_job_whose_key_is_locked(runtime, skyline, record_dir, redis_client):
    key, locks = KEYS.overlap_lock("busy"), Locks(redis_client)
    assert locks.acquire(key, "test", 60)
    runtime.dispatcher.dispatch([mj.drops_when_busy.prepare(n=n) for n in range(3)])

    assert skyline("work", *APP, "--stop-when-empty").returncode == 0
    assert runs(record_dir, "drops_when_busy") == []
    assert queue_drained(runtime)

    assert locks.release(key, "test")
    mj.drops_when_busy.dispatch(n=3)
    assert skyline("work", *APP, "--stop-when-empty").returncode == 0
    assert [r["n"] for r in runs(record_dir, "drops_when_busy")] == [3]


def test_lock_left_by_a_killed_worker_expires_after_expire_after(
    runtime, start_worker, record_dir, redis_client, short_leases
):
    key = KEYS.overlap_lock("tests.middleware_jobs.guarded:k")
    mj.guarded.dispatch(key="k", n=1, die=True)
    killed = start_worker(*APP)
    wait_until(lambda: killed.poll() is not None, message="the job did not kill its worker")

    looked_at = time.time()
    left_ms = redis_client.pttl(key)
    assert 0 < left_ms <= mj.LOCK_TTL_S * 1000
    mj.guarded.dispatch(key="k", n=2)
    start_worker(*APP)

    wait_until(lambda: {r["n"] for r in runs(record_dir, "guarded")} == {1, 2}, 15)
    [second] = [r for r in runs(record_dir, "guarded") if r["n"] == 2]
    assert second["t"] >= looked_at + left_ms / 1000
    wait_until(lambda: len(runs(record_dir, "guarded")) == 3, 15)
    wait_until(lambda: queue_drained(runtime))


def test_held_back_job_is_settled_and_the_holders_lease_renewed(
    runtime, start_worker, record_dir, short_leases
):
    """The holder outlives several leases while the other job is released again and again."""
    holder_s = short_leases + 1
    start_workers(start_worker)
    mj.Exclusive("lease", 1, holder_s).dispatch()
    wait_until(lambda: runs(record_dir, "exclusive_start"))
    mj.Exclusive("lease", 2, 0).dispatch()

    wait_until(lambda: len(runs(record_dir, "exclusive_end")) == 2, holder_s + 10)

    starts = runs(record_dir, "exclusive_start")
    assert [(r["n"], r["attempt"]) for r in starts] == [(1, 1), (2, 1)]
    assert starts[1]["t"] >= runs(record_dir, "exclusive_end")[0]["t"]
    wait_until(lambda: queue_drained(runtime))
    assert runtime.failed_store.list() == []


# -- ThrottlesExceptions --------------------------------------------------------------------


def test_after_the_limit_of_exceptions_jobs_wait_out_the_decay_without_running(
    runtime, start_worker, record_dir, redis_client
):
    start_workers(start_worker)
    mj.flaky.dispatch(n=1, failures=mj.THROTTLE_LIMIT)
    throttle = KEYS.exception_throttle("tests.middleware_jobs.flaky")
    wait_until(lambda: redis_client.get(throttle) == str(mj.THROTTLE_LIMIT).encode())
    first, tripped = runs(record_dir, "flaky")
    mj.flaky.dispatch(n=2, failures=0)

    wait_until(lambda: len(runs(record_dir, "flaky")) == 4, 10)

    by_n = {(r["n"], r["attempt"]): r["t"] for r in runs(record_dir, "flaky")}
    assert set(by_n) == {(1, 1), (1, 2), (1, 3), (2, 1)}
    assert tripped["t"] - first["t"] >= mj.THROTTLE_BACKOFF_S
    assert by_n[1, 3] >= tripped["t"] + mj.THROTTLE_DECAY_S
    assert by_n[2, 1] >= tripped["t"] + mj.THROTTLE_DECAY_S
    wait_until(lambda: queue_drained(runtime))


def test_by_exception_counts_only_those_exceptions(runtime, skyline, record_dir, redis_client):
    throttle = KEYS.exception_throttle("tests.middleware_jobs.picky")
    mj.picky.dispatch(n=1, error="value")

    assert skyline("work", *APP, "--stop-when-empty").returncode == 0
    assert [r["n"] for r in runs(record_dir, "picky")] == [1, 1]
    assert [f.exception_class for f in runtime.failed_store.list()] == ["ValueError"]
    assert not redis_client.exists(throttle)

    mj.picky.dispatch(n=2, error="connection")
    mj.picky.dispatch(n=3, error="value")
    assert skyline("work", *APP, "--stop-when-empty").returncode == 0

    assert [r["n"] for r in runs(record_dir, "picky")] == [1, 1, 2]
    assert int(redis_client.get(throttle)) == 1
    assert runtime.queue().sizes("default") == {"ready": 0, "delayed": 2, "reserved": 0}


# -- Skip -----------------------------------------------------------------------------------


def test_skip_when_and_unless_delete_jobs_without_running_or_leaving_a_trace(
    runtime, skyline, record_dir
):
    runtime.dispatcher.dispatch(
        [mj.skip_even.prepare(n=n) for n in range(4)]
        + [mj.only_even.prepare(n=n) for n in range(4)]
        + [mj.never.prepare(n=0)]
        + [mj.Newsletter(n, enabled=n == 1).prepare() for n in range(3)]
    )

    assert skyline("work", *APP, "--stop-when-empty").returncode == 0

    assert [r["n"] for r in runs(record_dir, "skip_even")] == [1, 3]
    assert [r["n"] for r in runs(record_dir, "only_even")] == [0, 2]
    assert runs(record_dir, "never") == []
    assert [r["n"] for r in runs(record_dir, "newsletter")] == [1]
    assert queue_drained(runtime)
    assert runtime.failed_store.list() == []
