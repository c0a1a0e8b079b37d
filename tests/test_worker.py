"""The worker as a user runs it: `skyline work` processes against real Redis and SQL."""

from __future__ import annotations

import signal
import time

import pytest

from core.payload import parse
from tests import jobs, lean_jobs
from tests.conftest import output, wait_until
from tests.jobs import runs


def queue_is_empty(runtime, *queues: str) -> bool:
    return all(runtime.queue().size(q) == 0 for q in queues or ("default",))


def test_jobs_run_in_queue_priority_order(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch([jobs.noop.options(queue="low").prepare(n) for n in range(3)])
    runtime.dispatcher.dispatch([jobs.noop.options(queue="high").prepare(n) for n in range(3, 6)])

    result = skyline("work", "high,low", "--stop-when-empty")

    assert result.returncode == 0, result.stderr
    assert [r["n"] for r in runs(record_dir, "noop")] == [3, 4, 5, 0, 1, 2]


def test_class_jobs_sync_and_async_run_with_their_data(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch(
        [jobs.Greeting("ann", 2).prepare(queue="default"), jobs.AsyncGreeting("bob").prepare()]
    )

    assert skyline("work", "--stop-when-empty").returncode == 0

    assert [(r["name"], r["times"]) for r in runs(record_dir, "greeting")] == [("ann", 2)]
    assert [r["name"] for r in runs(record_dir, "async_greeting")] == ["bob"]


def test_failing_job_is_retried_then_stored_with_its_failed_hook_run(runtime, skyline, record_dir):
    jobs.always_fails.options(backoff=0).dispatch(7)

    assert skyline("work", "--stop-when-empty").returncode == 0

    assert [r["attempt"] for r in runs(record_dir, "always_fails")] == [1, 2, 3]
    assert [r["n"] for r in runs(record_dir, "failed_hook")] == [7]
    [failed] = runtime.failed_store.list()
    assert (failed.job_name, failed.exception_class) == ("tests.jobs.always_fails", "ValueError")
    assert "always fails 7" in failed.traceback
    assert queue_is_empty(runtime)


def test_a_worker_loads_its_sql_store_at_the_first_failure_not_before(runtime, skyline, record_dir):
    lean_jobs.report_modules.dispatch("before")
    lean_jobs.fails.options(tries=1).dispatch()
    lean_jobs.report_modules.dispatch("after")

    result = skyline("work", "--app", "tests.lean_jobs", "--stop-when-empty")

    assert result.returncode == 0, result.stderr
    loaded = [(r["label"], r["sqlalchemy"]) for r in runs(record_dir, "modules")]
    assert loaded == [("before", False), ("after", True)]
    [failed] = runtime.failed_store.list()
    assert (failed.job_name, failed.message) == ("tests.lean_jobs.fails", "fails on purpose")


def test_a_worker_refuses_an_unmigrated_database_before_taking_a_job(
    runtime, skyline, worker_env, record_dir, blank_database_url
):
    jobs.noop.dispatch(1)
    worker_env["DATABASE_URL"] = blank_database_url

    result = skyline("work", "--once")

    assert result.returncode == 1
    assert "is not migrated to this version of Skyline: run `skyline migrate`" in result.stderr
    assert runs(record_dir, "noop") == [] and runtime.queue().size("default") == 1


def test_release_delete_and_fail_from_inside_a_job(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch(
        [
            jobs.releases_once.options(tries=2).prepare(),
            jobs.deletes_itself.prepare(),
            jobs.fails_itself.prepare(),
        ]
    )

    assert skyline("work", "--stop-when-empty").returncode == 0

    assert [r["attempt"] for r in runs(record_dir, "releases_once")] == [1, 2]
    assert len(runs(record_dir, "deletes_itself")) == 1
    [failed] = runtime.failed_store.list()
    assert (failed.job_name, failed.message) == ("tests.jobs.fails_itself", "the job gave up")
    assert queue_is_empty(runtime)


def test_delayed_job_runs_once_due_not_before(runtime, start_worker, record_dir):
    worker = start_worker()
    pushed_at = time.time()
    jobs.noop.options(delay=0.8).dispatch(1)

    [run] = wait_until(lambda: runs(record_dir, "noop"))

    assert run["t"] >= pushed_at + 0.8
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, output(worker)


def test_concurrency_runs_jobs_side_by_side(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch([jobs.slow.prepare(n, 0.3) for n in range(4)])

    assert skyline("work", "--concurrency", "4", "--stop-when-empty").returncode == 0

    starts = [r["t"] for r in runs(record_dir, "slow_start")]
    ends = [r["t"] for r in runs(record_dir, "slow_end")]
    assert len(ends) == 4
    assert max(starts) < min(ends), "all four jobs should have started before any finished"


def test_async_jobs_share_one_process_under_concurrency(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch([jobs.async_sleep.prepare(n, 0.2) for n in range(20)])

    assert skyline("work", "--concurrency", "20", "--stop-when-empty").returncode == 0

    done = runs(record_dir, "async_sleep")
    assert sorted(r["n"] for r in done) == list(range(20))
    assert len({r["pid"] for r in done}) == 1


@pytest.mark.parametrize(("flag", "expected_runs"), [("--once", 1), ("--max-jobs=2", 2)])
def test_once_and_max_jobs_stop_the_worker(runtime, skyline, record_dir, flag, expected_runs):
    runtime.dispatcher.dispatch([jobs.noop.prepare(n) for n in range(5)])

    assert skyline("work", flag).returncode == 0

    assert len(runs(record_dir, "noop")) == expected_runs
    assert runtime.queue().size("default") == 5 - expected_runs


def test_memory_limit_stops_the_worker_with_status_12(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch([jobs.noop.prepare(n) for n in range(3)])

    result = skyline("work", "--memory", "1")

    assert result.returncode == 12
    assert len(runs(record_dir, "noop")) == 1


def test_max_time_stops_an_idle_worker(runtime, skyline):
    result = skyline("work", "--max-time", "0.5", "--sleep", "0.1")

    assert result.returncode == 0


def test_sigterm_lets_the_running_job_finish_then_exits_zero(runtime, start_worker, record_dir):
    jobs.slow.dispatch(1, 1.0)
    worker = start_worker()
    wait_until(lambda: runs(record_dir, "slow_start"))

    worker.send_signal(signal.SIGTERM)

    assert worker.wait(timeout=20) == 0, output(worker)
    assert [r["n"] for r in runs(record_dir, "slow_end")] == [1]
    assert queue_is_empty(runtime)


def test_sigusr2_pauses_and_sigcont_continues(runtime, start_worker, record_dir):
    worker = start_worker("--sleep", "0.2")
    wait_until(lambda: "processing default" in output(worker))
    worker.send_signal(signal.SIGUSR2)
    wait_until(lambda: "paused" in output(worker), message=output(worker))
    jobs.noop.dispatch(1)

    continued_at = time.time()
    worker.send_signal(signal.SIGCONT)
    [run] = wait_until(lambda: runs(record_dir, "noop"))

    assert run["t"] >= continued_at, "no job may start while the worker is paused"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0


def test_sync_job_stuck_past_its_timeout_is_killed_and_failed(runtime, start_worker, record_dir):
    jobs.sleeps_forever.dispatch()
    worker = start_worker()

    assert worker.wait(timeout=30) == 2, output(worker)

    [failed] = runtime.failed_store.list()
    assert failed.exception_class == "JobTimeoutError"
    assert len(runs(record_dir, "sleeps_forever")) == 1
    assert queue_is_empty(runtime)


def test_async_job_past_its_timeout_is_cancelled_and_the_worker_goes_on(
    runtime, skyline, record_dir
):
    runtime.dispatcher.dispatch([jobs.async_overruns.prepare(), jobs.noop.prepare(1)])

    assert skyline("work", "--stop-when-empty").returncode == 0

    [failed] = runtime.failed_store.list()
    assert failed.exception_class == "JobTimeoutError"
    assert len(runs(record_dir, "noop")) == 1


def test_timed_out_job_is_retried_unless_fail_on_timeout(runtime, start_worker, record_dir):
    jobs.sleeps_forever.options(tries=2, fail_on_timeout=True).dispatch()
    worker = start_worker()

    assert worker.wait(timeout=30) == 2

    assert len(runs(record_dir, "sleeps_forever")) == 1
    assert runtime.failed_store.list()[0].exception_class == "JobTimeoutError"


def test_bad_arguments_fail_the_job_and_the_worker_goes_on(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch([jobs.noop.prepare(1, 2, 3), jobs.noop.prepare(4)])

    assert skyline("work", "--stop-when-empty").returncode == 0

    [failed] = runtime.failed_store.list()
    assert failed.exception_class == "ArgumentError"
    assert "arguments do not match" in failed.message
    assert [r["n"] for r in runs(record_dir, "noop")] == [4]


def test_missing_model_fails_or_deletes_as_the_job_asks(runtime, skyline, database_url, record_dir):
    sessions = jobs.use_database(database_url)
    with sessions.begin() as session:
        session.add_all([jobs.Customer(id=1, name="ann"), jobs.Customer(id=2, name="bob")])
    with sessions() as session:
        ann, bob = session.get(jobs.Customer, 1), session.get(jobs.Customer, 2)
        runtime.dispatcher.dispatch(
            [
                jobs.greet_customer.prepare(ann),
                jobs.greet_customer.prepare(bob),
                jobs.greet_customer_or_skip.prepare(bob),
            ]
        )
    with sessions.begin() as session:
        session.delete(session.get(jobs.Customer, 2))
        session.get(jobs.Customer, 1).name = "ann (renamed)"

    assert skyline("work", "--stop-when-empty").returncode == 0

    assert [r["name"] for r in runs(record_dir, "greet_customer")] == ["ann (renamed)"]
    assert runs(record_dir, "greet_customer_or_skip") == []
    [failed] = runtime.failed_store.list()
    assert failed.exception_class == "ModelNotFoundError"
    assert queue_is_empty(runtime)


def test_job_data_round_trips_rich_types(runtime, skyline, record_dir):
    import datetime as dt
    import uuid
    from decimal import Decimal

    values = [
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        dt.date(2026, 1, 2),
        uuid.UUID(int=7),
        Decimal("1.10"),
        jobs.Point(1, 2),
    ]
    runtime.dispatcher.dispatch([jobs.typed.prepare(v) for v in values])

    assert skyline("work", "typed", "--stop-when-empty").returncode == 0

    assert [r["value"] for r in runs(record_dir, "typed")] == [repr(v) for v in values]


def test_retry_keeps_the_signed_body_between_attempts(runtime, skyline):
    jobs.always_fails.options(backoff=60).dispatch(1)

    assert skyline("work", "--once").returncode == 0

    [(raw, _)] = runtime.queue().client.zrange(
        "skyline:{queue:default}:delayed", 0, -1, withscores=True
    )
    payload = parse(raw, runtime.settings.signing_keys())
    assert (payload.attempts, payload.exceptions, payload.lease) == (1, 1, None)


def test_max_exceptions_fails_a_job_before_its_tries_run_out(runtime, skyline, record_dir):
    jobs.always_fails.options(tries=10, max_exceptions=2, backoff=0).dispatch(1)

    assert skyline("work", "--stop-when-empty").returncode == 0

    assert len(runs(record_dir, "always_fails")) == 2
    assert runtime.failed_store.count() == 1


def test_releases_do_not_count_as_exceptions(runtime, skyline, record_dir):
    jobs.releases_once.options(tries=5, max_exceptions=1).dispatch()

    assert skyline("work", "--stop-when-empty").returncode == 0

    assert [r["attempt"] for r in runs(record_dir, "releases_once")] == [1, 2]
    assert runtime.failed_store.count() == 0


def test_retry_until_retries_past_tries_until_the_deadline(runtime, skyline, record_dir):
    jobs.fails_until.options(tries=1, retry_until=60, backoff=0).dispatch(3)

    assert skyline("work", "--stop-when-empty").returncode == 0

    assert [r["attempt"] for r in runs(record_dir, "fails_until")] == [1, 2, 3]
    assert runtime.failed_store.count() == 0


def test_worker_flag_defaults_apply_where_the_job_sets_none(runtime, skyline, record_dir):
    runtime.dispatcher.dispatch([jobs.raises.prepare(1), jobs.always_fails.prepare(2)])

    result = skyline("work", "--tries", "2", "--backoff", "0", "--stop-when-empty")

    assert result.returncode == 0
    assert len(runs(record_dir, "raises")) == 2, "--tries applies to a job without tries"
    assert len(runs(record_dir, "always_fails")) == 3, "the job's own tries=3 wins"
