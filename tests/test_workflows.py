"""Chains, batches and unique jobs under real workers, Redis and SQL."""

from __future__ import annotations

import json
import signal

import pytest

import tests.workflow_jobs as wf
from core.batches import batch, find_batch
from core.chains import chain
from tests.conftest import wait_until
from tests.jobs import runs

APP = ("--app", "tests.workflow_jobs")


def work(skyline, *args: str):
    result = skyline("work", *APP, *args, "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    return result


def names(record_dir, kind: str = "step") -> list[str]:
    return [r["name"] for r in runs(record_dir, kind)]


def test_chain_runs_links_in_order(runtime, skyline, record_dir):
    chain([wf.step.prepare("a"), wf.step.prepare("b"), wf.step.prepare("c")]).dispatch()

    work(skyline)

    assert names(record_dir) == ["a", "b", "c"]


def test_failed_link_stops_the_chain_and_runs_its_catch(runtime, skyline, record_dir):
    chain([wf.step.prepare("a"), wf.broken_step.prepare("b"), wf.step.prepare("c")]).catch(
        wf.on_chain_failed
    ).dispatch()

    work(skyline)

    assert names(record_dir) == ["a"]
    [caught] = runs(record_dir, "chain_catch")
    assert caught["error"] == "RuntimeError: step b broke"


def test_chain_queue_applies_where_a_link_sets_none(runtime, skyline, record_dir):
    chain([wf.step.prepare("a"), wf.step.options(queue="own").prepare("b")]).on_queue(
        "chained"
    ).dispatch()

    work(skyline, "chained,own")

    assert [r["queue"] for r in runs(record_dir, "step")] == ["chained", "own"]


def test_a_job_can_prepend_and_append_to_its_chain(runtime, skyline, record_dir):
    chain([wf.grows_its_chain.prepare(), wf.step.prepare("last")]).dispatch()

    work(skyline)

    assert names(record_dir) == ["grower", "prepended", "last", "appended"]


@pytest.mark.slow
def test_batch_counts_hundreds_of_jobs_across_two_workers(runtime, start_worker, record_dir):
    jobs = [wf.BatchedStep(f"j{n}") for n in range(300)]
    pending = batch(jobs).then(wf.on_then).finally_(wf.on_finally).name("three hundred")
    created = pending.dispatch()
    workers = [start_worker(*APP), start_worker(*APP)]

    done = wait_until(lambda: find_batch(created.id).finished, timeout_s=60)

    final = find_batch(created.id)
    assert done and (final.total_jobs, final.pending_jobs, final.failed_jobs) == (300, 0, 0)
    assert final.progress == 100 and final.name == "three hundred"
    wait_until(lambda: runs(record_dir, "then") and runs(record_dir, "finally"))
    assert len(set(names(record_dir, "batched"))) == 300
    assert len({r["pid"] for r in runs(record_dir, "batched")}) == 2
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    assert len(runs(record_dir, "then")) == len(runs(record_dir, "finally")) == 1


def test_callbacks_run_once_each_with_failures_allowed(runtime, skyline, record_dir):
    jobs = [
        wf.BatchedStep("ok-1"),
        wf.BatchedStep("bad-1", fail=True),
        wf.BatchedStep("bad-2", fail=True),
        wf.BatchedStep("ok-2"),
    ]
    created = (
        batch(jobs)
        .then(wf.on_then)
        .catch(wf.on_catch)
        .finally_(wf.on_finally)
        .allow_failures()
        .dispatch()
    )

    work(skyline)

    final = find_batch(created.id)
    assert (final.pending_jobs, final.failed_jobs, final.finished) == (2, 2, True)
    assert not final.cancelled
    assert sorted(names(record_dir, "batched")) == ["bad-1", "bad-2", "ok-1", "ok-2"]
    assert runs(record_dir, "then") == []
    [caught] = runs(record_dir, "catch")
    assert caught["batch_id"] == created.id and "failed" in caught["error"]
    assert len(runs(record_dir, "finally")) == 1
    assert len(final.failed_job_ids) == 2


def test_first_failure_cancels_a_batch_and_later_jobs_skip(runtime, skyline, record_dir):
    jobs = [wf.BatchedStep("bad", fail=True), wf.BatchedStep("later-1"), wf.BatchedStep("later-2")]
    created = batch(jobs).catch(wf.on_catch).finally_(wf.on_finally).dispatch()

    work(skyline)

    final = find_batch(created.id)
    assert final.cancelled and final.finished
    assert names(record_dir, "batched") == ["bad"]
    assert len(runs(record_dir, "catch")) == len(runs(record_dir, "finally")) == 1


def test_cancelled_batch_skips_its_waiting_jobs(runtime, skyline, record_dir):
    created = batch([wf.BatchedStep("a"), wf.BatchedStep("b")]).dispatch()

    created.cancel()
    work(skyline)

    assert names(record_dir, "batched") == []
    assert find_batch(created.id).finished


def test_a_batched_job_can_add_jobs_to_its_batch(runtime, skyline, record_dir):
    created = batch([wf.adds_more.prepare(3)]).then(wf.on_then).dispatch()

    work(skyline)

    final = find_batch(created.id)
    assert (final.total_jobs, final.pending_jobs, final.finished) == (4, 0, True)
    assert sorted(names(record_dir)) == ["added-0", "added-1", "added-2"]
    assert len(runs(record_dir, "then")) == 1


def test_chains_inside_a_batch_run_in_order_and_count_once(runtime, skyline, record_dir):
    created = (
        batch(
            [
                [wf.step.prepare("a1"), wf.step.prepare("a2")],
                [wf.step.prepare("b1"), wf.step.prepare("b2")],
                wf.step.prepare("c"),
            ]
        )
        .then(wf.on_then)
        .dispatch()
    )

    work(skyline)

    order = names(record_dir)
    assert sorted(order) == ["a1", "a2", "b1", "b2", "c"]
    assert order.index("a1") < order.index("a2") and order.index("b1") < order.index("b2")
    final = find_batch(created.id)
    assert (final.total_jobs, final.pending_jobs, final.finished) == (3, 0, True)
    assert len(runs(record_dir, "then")) == 1


def test_a_batch_inside_a_chain_runs_between_its_neighbours(runtime, skyline, record_dir):
    inner = batch([wf.step.prepare("b1"), wf.step.prepare("b2")]).then(wf.on_then)
    chain([wf.step.prepare("a"), inner, wf.step.prepare("c")]).dispatch()

    work(skyline)

    order = names(record_dir)
    assert order[0] == "a" and order[-1] == "c"
    assert sorted(order[1:3]) == ["b1", "b2"]
    assert len(runs(record_dir, "then")) == 1


def test_empty_batch_finishes_at_once(runtime, skyline, record_dir):
    batch([]).then(wf.on_then).finally_(wf.on_finally).dispatch()

    work(skyline)

    assert len(runs(record_dir, "then")) == len(runs(record_dir, "finally")) == 1


def test_unique_job_is_not_queued_twice_while_it_waits(runtime, skyline, record_dir):
    first = wf.unique_sleeper.dispatch("report-7")
    second = wf.unique_sleeper.dispatch("report-7")
    other = wf.unique_sleeper.dispatch("report-8")

    assert first is not None and second is None and other is not None
    work(skyline)
    assert sorted(r["key"] for r in runs(record_dir, "unique_end")) == ["report-7", "report-8"]
    assert wf.unique_sleeper.dispatch("report-7") is not None, "the lock goes with the job"


def test_unique_until_processing_frees_the_lock_when_the_job_starts(runtime, skyline):
    assert wf.unique_until_start.dispatch("k") is not None
    assert wf.unique_until_start.dispatch("k") is None

    work(skyline, "--once")

    assert wf.unique_until_start.dispatch("k") is not None


@pytest.mark.slow
def test_unique_lock_expires_after_its_worker_was_killed(runtime, start_worker, record_dir):
    assert wf.unique_sleeper.dispatch("stuck", 60) is not None
    worker = start_worker(*APP)
    wait_until(lambda: runs(record_dir, "unique_start"))
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert wf.unique_sleeper.dispatch("stuck") is None

    assert wait_until(lambda: wf.unique_sleeper.dispatch("stuck"), timeout_s=10)


def test_batches_cli_lists_shows_retries_once_and_cancels(runtime, skyline, record_dir):
    created = (
        batch([wf.BatchedStep("ok"), wf.broken_step.prepare("x")])
        .name("nightly")
        .allow_failures()
        .dispatch()
    )
    work(skyline)

    listing = skyline("batches", "list", "--search", "night", "--json")
    [row] = json.loads(listing.stdout)
    assert (row["id"], row["failed_jobs"], row["progress"]) == (created.id, 1, 50)
    shown = json.loads(skyline("batches", "show", created.id, "--json").stdout)
    assert len(shown["failed_job_ids"]) == 1

    retried = skyline("batches", "retry", created.id)
    assert retried.returncode == 0 and "Retried 1 failed job in" in retried.stdout
    again = skyline("batches", "retry", created.id)  # before the retry has run: left alone
    assert again.returncode == 0 and "Retried 0 failed jobs in" in again.stdout
    assert "1 skipped (already retried)" in again.stdout
    work(skyline)
    assert names(record_dir, "broken_step") == ["x", "x"]

    assert skyline("batches", "cancel", created.id).returncode == 0
    assert find_batch(created.id).cancelled
    missing = skyline("batches", "show", "no-such-batch")
    assert missing.returncode == 1 and "no batch no-such-batch" in missing.stderr


def test_batches_prune_removes_finished_batches(runtime, skyline):
    finished = batch([wf.step.prepare("a")]).dispatch()
    running = batch([wf.step.options(queue="elsewhere").prepare("b")]).dispatch()
    work(skyline)

    pruned = skyline("batches", "prune", "--hours", "0")

    assert pruned.returncode == 0 and "Pruned 1 batch " in pruned.stdout
    assert find_batch(finished.id) is None and find_batch(running.id) is not None
    assert "Pruned 1" in skyline("batches", "prune", "--unfinished-hours", "0").stdout


def test_dispatch_after_commit_waits_for_the_commit_and_drops_on_rollback(
    runtime, database_url, redis_client
):
    from sqlalchemy import text

    from core.transactions import track_transactions
    from tests.jobs import use_database

    track_transactions()
    sessions = use_database(database_url)
    ready = "skyline:{queue:default}"
    with sessions() as session:
        session.execute(text("SELECT 1"))
        wf.step.options(after_commit=True).dispatch("committed")
        assert redis_client.llen(ready) == 0, "not pushed before the commit"
        session.commit()
    assert redis_client.llen(ready) == 1

    with sessions() as session:
        session.execute(text("SELECT 1"))
        wf.step.options(after_commit=True).dispatch("rolled back")
        session.rollback()
    assert redis_client.llen(ready) == 1

    wf.step.options(after_commit=True).dispatch("no transaction")
    assert redis_client.llen(ready) == 2, "without a transaction the push happens at once"
