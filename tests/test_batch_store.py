import multiprocessing
import random
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, inspect, select, text, update

from core.batch_store import (
    BatchJobStatus,
    BatchNotFound,
    BatchRecord,
    BatchRepository,
    BatchTransition,
)
from core.db import MIGRATIONS_DIR, database_engine, migrate
from core.failed import FailedJobRepository
from core.models import BatchJob, JobBatch
from core.schema_revision import SCHEMA_REVISION, VERSION_TABLE, schema_is_current

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HAIR = timedelta(microseconds=1)
LONG_AGO = T0 - timedelta(days=30)


@pytest.fixture
def batches(engine: Engine) -> BatchRepository:
    return BatchRepository(engine)


def new_batch(batches: BatchRepository, total_jobs: int = 2, **overrides: Any) -> BatchRecord:
    fields = dict(
        id=str(uuid4()),
        name="import users",
        total_jobs=total_jobs,
        options={"queue": "default", "then": {"job": "notify"}},
        created_at=T0,
    )
    return batches.create(**(fields | overrides))


def flags(transition: BatchTransition) -> tuple[bool, bool, bool, bool]:
    t = transition
    return (t.counted, t.all_succeeded, t.first_failure, t.finished_now)


def counters(record: BatchRecord) -> tuple[int, int, int]:
    return (record.total_jobs, record.pending_jobs, record.failed_jobs)


def job_rows(engine: Engine, batch_id: str) -> int:
    query = select(func.count()).select_from(BatchJob).where(BatchJob.batch_id == batch_id)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


# --- records ----------------------------------------------------------------------------


def test_create_starts_with_every_job_pending(batches):
    options = {"queue": "emails", "allow_failures": True, "then": {"job": "x", "args": ["é"]}}
    created = new_batch(batches, total_jobs=3, name="welcome mails", options=options)
    assert counters(created) == (3, 3, 0)
    assert (created.name, created.options, created.created_at) == ("welcome mails", options, T0)
    assert (created.cancelled_at, created.finished_at, created.caught_at) == (None, None, None)
    assert batches.get(created.id) == created


def test_created_at_is_stored_as_aware_utc_and_defaults_to_now(batches):
    paris = timezone(timedelta(hours=1))
    given = new_batch(batches, created_at=datetime(2025, 3, 1, 13, 0, tzinfo=paris))
    assert batches.get(given.id).created_at == T0
    assert batches.get(given.id).created_at.tzinfo == UTC
    before = datetime.now(UTC)
    defaulted = new_batch(batches, created_at=None)
    assert before <= batches.get(defaulted.id).created_at <= datetime.now(UTC)


def test_get_returns_none_for_an_unknown_batch(batches):
    assert batches.get(str(uuid4())) is None


def test_progress_counts_processed_jobs_rounded_down(batches):
    batch = new_batch(batches, total_jobs=3)
    batches.record_success(batch.id, "a")
    record = batches.record_success(batch.id, "b").record
    assert (record.processed_jobs, record.progress) == (2, 66)
    assert batches.record_failure(batch.id, "c").record.progress == 66
    assert batches.record_success(batch.id, "c").record.progress == 100


def test_progress_of_an_empty_batch_is_100(batches):
    empty = new_batch(batches, total_jobs=0)
    assert (empty.processed_jobs, empty.progress) == (0, 100)


# --- listing ----------------------------------------------------------------------------


def test_list_is_newest_first_with_paging(batches):
    ids = [new_batch(batches, created_at=T0 + timedelta(minutes=n)).id for n in range(5)]
    assert [b.id for b in batches.list()] == list(reversed(ids))
    assert [b.id for b in batches.list(limit=2, offset=1)] == [ids[3], ids[2]]
    assert batches.list(offset=5) == []


def test_list_and_count_search_name_anywhere_or_id_prefix(batches):
    mails = new_batch(batches, id="aaaa-1", name="Welcome Mails")
    report = new_batch(batches, id="bbbb-2", name="100% report", created_at=T0 + HAIR)
    assert [b.id for b in batches.list(search="mail")] == [mails.id]
    assert [b.id for b in batches.list(search="bbbb")] == [report.id]
    assert [b.id for b in batches.list(search="%")] == [report.id]
    assert batches.list(search="-2") == []
    assert batches.count(search="MAILS") == 1
    assert batches.count(search="_") == 0


def test_count(batches):
    for _ in range(3):
        new_batch(batches)
    assert batches.count() == 3
    assert batches.count(search="nothing like it") == 0


# --- counting -------------------------------------------------------------------------


def test_first_success_of_a_job_takes_it_out_of_pending(batches):
    batch = new_batch(batches, total_jobs=2)
    transition = batches.record_success(batch.id, "a")
    assert flags(transition) == (True, False, False, False)
    assert counters(transition.record) == (2, 1, 0)
    assert batches.get(batch.id) == transition.record


def test_repeated_success_changes_nothing(batches):
    batch = new_batch(batches, total_jobs=2)
    counted = batches.record_success(batch.id, "a")
    repeated = batches.record_success(batch.id, "a")
    assert flags(repeated) == (False, False, False, False)
    assert repeated.record == counted.record == batches.get(batch.id)


def test_all_succeeded_only_for_the_success_that_empties_pending(batches):
    batch = new_batch(batches, total_jobs=2)
    assert not batches.record_success(batch.id, "a").all_succeeded
    last = batches.record_success(batch.id, "b", at=T0)
    assert flags(last) == (True, True, False, True)
    assert counters(last.record) == (2, 0, 0)
    assert last.record.finished_at == T0 and last.record.finished
    assert not batches.record_success(batch.id, "b").all_succeeded


def test_first_failure_counts_the_job_and_catches_the_batch(batches):
    batch = new_batch(batches, total_jobs=3)
    first = batches.record_failure(batch.id, "a", at=T0)
    assert flags(first) == (True, False, True, False)
    assert counters(first.record) == (3, 3, 1)
    assert first.record.caught_at == T0


def test_repeated_failure_changes_nothing(batches):
    batch = new_batch(batches, total_jobs=3)
    counted = batches.record_failure(batch.id, "a")
    repeated = batches.record_failure(batch.id, "a")
    assert flags(repeated) == (False, False, False, False)
    assert repeated.record == counted.record


def test_only_the_first_failed_job_is_a_first_failure(batches):
    batch = new_batch(batches, total_jobs=3)
    batches.record_failure(batch.id, "a", at=T0)
    second = batches.record_failure(batch.id, "b", at=T0 + HAIR)
    assert flags(second) == (True, False, False, False)
    assert counters(second.record) == (3, 3, 2)
    assert second.record.caught_at == T0


def test_failure_after_success_changes_nothing(batches):
    batch = new_batch(batches, total_jobs=2)
    succeeded = batches.record_success(batch.id, "a")
    late = batches.record_failure(batch.id, "a")
    assert flags(late) == (False, False, False, False)
    assert late.record == succeeded.record
    assert batches.failed_job_ids(batch.id) == []


def test_success_of_a_failed_job_clears_its_failure(batches):
    batch = new_batch(batches, total_jobs=2)
    batches.record_failure(batch.id, "a")
    retried = batches.record_success(batch.id, "a")
    assert flags(retried) == (True, False, False, False)
    assert counters(retried.record) == (2, 1, 0)
    assert batches.job_ids(batch.id, BatchJobStatus.COMPLETED) == ["a"]


def test_finished_now_once_when_every_job_completed_or_failed(batches):
    batch = new_batch(batches, total_jobs=2)
    batches.record_success(batch.id, "a")
    finishing = batches.record_failure(batch.id, "b", at=T0)
    assert flags(finishing) == (True, False, True, True)
    assert counters(finishing.record) == (2, 1, 1) and finishing.record.finished_at == T0
    retried = batches.record_success(batch.id, "b", at=T0 + HAIR)
    assert flags(retried) == (True, True, False, False)
    assert counters(retried.record) == (2, 0, 0) and retried.record.finished_at == T0


def test_recording_into_an_unknown_batch_raises(batches):
    with pytest.raises(BatchNotFound):
        batches.record_success(str(uuid4()), "a")
    with pytest.raises(BatchNotFound):
        batches.record_failure(str(uuid4()), "a")


# --- adding, cancelling ------------------------------------------------------------------


def test_add_jobs_grows_total_and_pending(batches):
    batch = new_batch(batches, total_jobs=2)
    batches.record_failure(batch.id, "a")
    added = batches.add_jobs(batch.id, 3)
    assert counters(added) == (5, 5, 1)
    assert batches.get(batch.id) == added


def test_add_jobs_unfinishes_a_finished_batch_until_its_new_jobs_are_done(batches):
    batch = new_batch(batches, total_jobs=1)
    assert batches.record_success(batch.id, "a").finished_now
    added = batches.add_jobs(batch.id, 1)
    assert (added.finished_at, added.finished) == (None, False)
    assert added.progress == 50
    last = batches.record_success(batch.id, "b", at=T0)
    assert flags(last) == (True, True, False, True)
    assert last.record.finished_at == T0


def test_adding_no_jobs_leaves_a_finished_batch_finished(batches):
    batch = new_batch(batches, total_jobs=1)
    finished_at = batches.record_success(batch.id, "a").record.finished_at
    assert batches.add_jobs(batch.id, 0).finished_at == finished_at


def test_add_jobs_refuses_unknown_batches_and_negative_counts(batches):
    with pytest.raises(BatchNotFound):
        batches.add_jobs(str(uuid4()), 1)
    with pytest.raises(ValueError, match="-1"):
        batches.add_jobs(new_batch(batches).id, -1)


def test_cancel_sets_cancelled_at_once(batches):
    batch = new_batch(batches)
    cancelled = batches.cancel(batch.id, at=T0)
    assert (cancelled.cancelled_at, cancelled.cancelled) == (T0, True)
    assert batches.cancel(batch.id, at=T0 + HAIR).cancelled_at == T0
    assert cancelled.finished_at is None and batches.get(batch.id) == cancelled
    with pytest.raises(BatchNotFound):
        batches.cancel(str(uuid4()))


def test_a_cancelled_batch_still_counts_its_jobs(batches):
    batch = new_batch(batches, total_jobs=1)
    batches.cancel(batch.id, at=T0)
    last = batches.record_success(batch.id, "a")
    assert flags(last) == (True, True, False, True)
    assert last.record.cancelled_at == T0


# --- job ids, delete, prune -----------------------------------------------------------------


def test_job_ids_in_recorded_order_by_status(batches):
    batch = new_batch(batches, total_jobs=4)
    batches.record_failure(batch.id, "z", at=T0)
    batches.record_success(batch.id, "y", at=T0 + timedelta(seconds=1))
    batches.record_failure(batch.id, "x", at=T0 + timedelta(seconds=2))
    batches.record_success(batch.id, "z", at=T0 + timedelta(seconds=3))
    assert batches.job_ids(batch.id) == ["y", "x", "z"]
    assert batches.job_ids(batch.id, "completed") == ["y", "z"]
    assert batches.job_ids(batch.id, BatchJobStatus.FAILED) == ["x"]
    assert batches.failed_job_ids(batch.id) == ["x"]
    assert batches.job_ids(str(uuid4())) == []
    with pytest.raises(ValueError):
        batches.job_ids(batch.id, "lost")


def test_job_ids_come_a_page_at_a_time(batches):
    batch = new_batch(batches, total_jobs=5)
    for n, job_id in enumerate("abcde"):
        batches.record_success(batch.id, job_id, at=T0 + timedelta(seconds=n))
    assert batches.job_ids(batch.id, "completed", limit=2) == ["a", "b"]
    assert batches.job_ids(batch.id, "completed", limit=2, offset=2) == ["c", "d"]
    assert batches.job_ids(batch.id, limit=2, offset=4) == ["e"]
    assert batches.job_ids(batch.id, offset=3) == ["d", "e"]


def test_delete_removes_the_batch_and_its_jobs(batches, engine):
    doomed, kept = new_batch(batches), new_batch(batches)
    for batch in (doomed, kept):
        batches.record_success(batch.id, "a")
        batches.record_failure(batch.id, "b")
    assert batches.delete(doomed.id) is True
    assert batches.get(doomed.id) is None and job_rows(engine, doomed.id) == 0
    assert batches.delete(doomed.id) is False
    assert batches.get(kept.id) is not None and job_rows(engine, kept.id) == 2


def test_batch_jobs_cascade_with_their_batch_in_the_schema(engine):
    (foreign_key,) = inspect(engine).get_foreign_keys("skyline_batch_jobs")
    assert foreign_key["referred_table"] == "skyline_job_batches"
    assert foreign_key["options"]["ondelete"] == "CASCADE"


def finished_batch(batches: BatchRepository, at: datetime, **overrides: Any) -> str:
    batch = new_batch(batches, total_jobs=1, created_at=LONG_AGO, **overrides)
    batches.record_success(batch.id, "only", at=at)
    return batch.id


def ids_left(batches: BatchRepository) -> set[str]:
    return {b.id for b in batches.list(limit=100)}


def test_prune_deletes_batches_finished_strictly_before(batches, engine):
    old = finished_batch(batches, at=T0 - HAIR)
    boundary = finished_batch(batches, at=T0)
    unfinished = new_batch(batches, created_at=LONG_AGO).id
    cancelled = batches.cancel(new_batch(batches, created_at=LONG_AGO).id, at=LONG_AGO).id
    assert batches.prune(finished_before=T0) == 1
    assert ids_left(batches) == {boundary, unfinished, cancelled}
    assert job_rows(engine, old) == 0 and job_rows(engine, boundary) == 1


def test_prune_deletes_unfinished_batches_created_strictly_before(batches, engine):
    old = new_batch(batches, created_at=T0 - HAIR).id
    batches.record_failure(old, "a")
    boundary = new_batch(batches, created_at=T0).id
    finished_late = finished_batch(batches, at=T0 + timedelta(hours=1))
    assert batches.prune(finished_before=LONG_AGO, unfinished_before=T0) == 1
    assert ids_left(batches) == {boundary, finished_late}
    assert job_rows(engine, old) == 0


def test_prune_deletes_batches_cancelled_strictly_before(batches, engine):
    old = batches.cancel(new_batch(batches, created_at=LONG_AGO).id, at=T0 - HAIR).id
    batches.record_failure(old, "a")
    boundary = batches.cancel(new_batch(batches, created_at=LONG_AGO).id, at=T0).id
    assert batches.prune(finished_before=LONG_AGO, cancelled_before=T0) == 1
    assert ids_left(batches) == {boundary}
    assert job_rows(engine, old) == 0


def test_prune_counts_a_batch_matching_several_ages_once(batches):
    finished_batch(batches, at=LONG_AGO)
    batches.cancel(batches.list()[0].id, at=LONG_AGO)
    pruned = batches.prune(finished_before=T0, unfinished_before=T0, cancelled_before=T0)
    assert pruned == 1
    assert batches.count() == 0


def test_prune_in_chunks_deletes_exactly_the_batches_before_the_cutoff(batches, engine):
    old = [finished_batch(batches, at=T0 - HAIR) for _ in range(7)]
    kept = {finished_batch(batches, at=T0) for _ in range(2)}
    seen: list[int] = []

    assert batches.prune(finished_before=T0, chunk=3, progress=seen.append) == 7

    assert seen == [3, 3, 1]
    assert ids_left(batches) == kept
    assert [job_rows(engine, id) for id in old] == [0] * 7
    assert [job_rows(engine, id) for id in kept] == [1, 1]


# --- migrations -------------------------------------------------------------------------


def alembic(engine: Engine, action: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def versions(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()


def test_migrate_brings_a_0001_database_to_head(blank_database_url):
    engine = database_engine(blank_database_url)
    alembic(engine, "upgrade", "0001")
    failed_id = FailedJobRepository(engine).record(
        uuid=str(uuid4()),
        connection="redis",
        queue="default",
        job_name="send_welcome",
        payload="{}",
        exception_class="ValueError",
        message="boom",
        traceback="...",
    )
    assert versions(engine) == ["0001"] and not schema_is_current(blank_database_url)
    migrate(engine)
    assert versions(engine) == [SCHEMA_REVISION] and schema_is_current(blank_database_url)
    assert FailedJobRepository(engine).get(failed_id) is not None
    batch = new_batch(BatchRepository(engine), total_jobs=1)
    assert BatchRepository(engine).record_success(batch.id, "a").all_succeeded
    engine.dispose()


def test_downgrade_to_0001_drops_the_batch_tables(blank_database_url):
    engine = database_engine(blank_database_url)
    migrate(engine)
    alembic(engine, "downgrade", "0001")
    tables = set(inspect(engine).get_table_names())
    assert "skyline_failed_jobs" in tables
    assert not tables & {"skyline_job_batches", "skyline_batch_jobs"}
    assert versions(engine) == ["0001"]
    engine.dispose()


# --- many processes, one batch -----------------------------------------------------------

PROCESSES = 4
THREADS = 3
RESULT_TIMEOUT_S = 90

Op = tuple[str, str]  # ("success" | "failure" | "add", job id)


def apply(batches: BatchRepository, batch_id: str, op: Op) -> Any:
    kind, job_id = op
    if kind == "success":
        return batches.record_success(batch_id, job_id)
    if kind == "failure":
        return batches.record_failure(batch_id, job_id)
    return batches.add_jobs(batch_id, 1)


def hammer(url: str, batch_id: str, plans: list[list[Op]], barrier: Any, results: Any) -> None:
    """Runs in a spawned process: an engine of its own, one thread per plan."""
    try:
        engine = database_engine(url)
        batches = BatchRepository(engine)

        def run(plan: list[Op]) -> list[tuple[Op, Any]]:
            return [(op, apply(batches, batch_id, op)) for op in plan]

        barrier.wait(timeout=RESULT_TIMEOUT_S)
        with ThreadPoolExecutor(len(plans)) as pool:
            results.put([done for thread in pool.map(run, plans) for done in thread])
        engine.dispose()
    except BaseException:
        results.put(traceback.format_exc())


def run_in_processes(url: str, batch_id: str, plans: list[list[list[Op]]]) -> list:
    """Every process starts its calls at the same moment; returns all (op, result) pairs."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(len(plans)), context.Queue()
    processes = [
        context.Process(target=hammer, args=(url, batch_id, process_plans, barrier, results))
        for process_plans in plans
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=RESULT_TIMEOUT_S) for _ in processes]
    for process in processes:
        process.join(timeout=RESULT_TIMEOUT_S)
    errors = [outcome for outcome in outcomes if isinstance(outcome, str)]
    assert not errors, errors[0]
    return [done for outcome in outcomes for done in outcome]


def plans_for(scripts: dict[str, list[Op]], seed: int) -> list[list[Op]]:
    """Each process runs every job's script, jobs shuffled and dealt out to its threads;
    a script's steps stay in order within one thread."""
    jobs = sorted(scripts)
    random.Random(seed).shuffle(jobs)
    plans: list[list[Op]] = [[] for _ in range(THREADS)]
    for n, job_id in enumerate(jobs):
        plans[n % THREADS] += scripts[job_id]
    return plans


def hammer_batch(url: str, batch_id: str, scripts: dict[str, list[Op]]) -> list:
    plans = [plans_for(scripts, seed) for seed in range(PROCESSES)]
    return run_in_processes(url, batch_id, plans)


def transitions(done: list) -> list[tuple[Op, BatchTransition]]:
    return [(op, result) for op, result in done if isinstance(result, BatchTransition)]


def flag_counts(done: list) -> Counter[str]:
    names = ("counted", "all_succeeded", "first_failure", "finished_now")
    return Counter(name for _, t in transitions(done) for name in names if getattr(t, name))


def counted_per_job(done: list, kind: str) -> Counter[str]:
    return Counter(job for (k, job), t in transitions(done) if k == kind and t.counted)


def scripts_of(prefix: str, count: int, steps: list[str]) -> dict[str, list[Op]]:
    return {f"{prefix}{n}": [(step, f"{prefix}{n}") for step in steps] for n in range(count)}


@pytest.mark.slow
def test_processes_repeating_successes_count_each_job_once(batches, database_url):
    scripts = scripts_of("s", 150, ["success", "success"])
    batch = new_batch(batches, total_jobs=150)
    done = hammer_batch(database_url, batch.id, scripts)
    assert len(done) == PROCESSES * 300
    assert counters(batches.get(batch.id)) == (150, 0, 0)
    assert counted_per_job(done, "success") == Counter(dict.fromkeys(scripts, 1))
    assert flag_counts(done) == Counter(counted=150, all_succeeded=1, finished_now=1)
    (last,) = [t for _, t in transitions(done) if t.all_succeeded]
    assert last.finished_now and counters(last.record) == (150, 0, 0)


@pytest.mark.slow
def test_processes_recording_failures_and_retries_keep_exact_counters(batches, database_url):
    scripts = (
        scripts_of("ok", 60, ["success"])
        | scripts_of("retried", 60, ["failure", "success", "failure"])
        | scripts_of("lost", 40, ["failure", "failure"])
    )
    batch = new_batch(batches, total_jobs=160)
    done = hammer_batch(database_url, batch.id, scripts)
    record = batches.get(batch.id)
    assert counters(record) == (160, 40, 40) and record.finished
    assert sorted(batches.failed_job_ids(batch.id)) == sorted(scripts_of("lost", 40, []))
    assert counted_per_job(done, "success") == Counter(
        dict.fromkeys([*scripts_of("ok", 60, []), *scripts_of("retried", 60, [])], 1)
    )
    assert counted_per_job(done, "failure") == Counter(
        dict.fromkeys([*scripts_of("retried", 60, []), *scripts_of("lost", 40, [])], 1)
    )
    assert flag_counts(done) == Counter(counted=220, first_failure=1, finished_now=1)
    (finishing,) = [t for _, t in transitions(done) if t.finished_now]
    assert finishing.record.pending_jobs == finishing.record.failed_jobs


@pytest.mark.slow
def test_processes_retrying_every_failure_succeed_once(batches, database_url):
    scripts = scripts_of("ok", 60, ["success", "success"]) | scripts_of(
        "retried", 60, ["failure", "failure", "success"]
    )
    batch = new_batch(batches, total_jobs=120)
    done = hammer_batch(database_url, batch.id, scripts)
    assert counters(batches.get(batch.id)) == (120, 0, 0)
    assert batches.failed_job_ids(batch.id) == []
    assert flag_counts(done) == Counter(
        counted=180, all_succeeded=1, first_failure=1, finished_now=1
    )
    (last,) = [t for _, t in transitions(done) if t.all_succeeded]
    assert counters(last.record) == (120, 0, 0)


@pytest.mark.slow
def test_processes_adding_jobs_while_others_succeed_lose_no_update(batches, database_url):
    """Each thread adds a job to the batch before its (repeated) success, as a running job
    adding to its own batch does; no increment or decrement may be lost."""
    batch = new_batch(batches, total_jobs=0)
    plans = [
        plans_for(scripts_of(f"p{p}-", 40, ["add", "success", "success"]), seed=p)
        for p in range(PROCESSES)
    ]
    run_in_processes(database_url, batch.id, plans)
    assert counters(batches.get(batch.id)) == (160, 0, 0)
    assert len(batches.job_ids(batch.id, BatchJobStatus.COMPLETED)) == 160


def test_a_batch_with_unreadable_options_still_lists(engine):
    batches = BatchRepository(engine)
    batches.create(id="b-1", name="nightly", total_jobs=1, options={"allow_failures": True})
    with engine.begin() as connection:
        connection.execute(update(JobBatch).values(options="{broken"))
    [batch] = batches.list()
    assert (batch.id, batch.options) == ("b-1", {})
