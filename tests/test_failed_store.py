from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import StatementError

from core.db import alembic_head, database_engine, migrate
from core.failed import FailedJobRepository
from core.models import Base
from core.schema_revision import SCHEMA_REVISION, schema_is_current

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
VERSION_TABLE = "skyline_alembic_version"


@pytest.fixture
def failed(engine: Engine) -> FailedJobRepository:
    return FailedJobRepository(engine)


def record(failed: FailedJobRepository, **overrides) -> int:
    fields = dict(
        uuid=str(uuid4()),
        connection="redis",
        queue="default",
        job_name="send_welcome",
        payload='{"job": "send_welcome", "args": [42]}',
        exception_class="ValueError",
        message="boom",
        traceback="Traceback (most recent call last): ...",
        failed_at=T0,
    )
    return failed.record(**(fields | overrides))


def test_migrate_is_idempotent(engine):
    migrate(engine)
    with engine.connect() as connection:
        versions = connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    assert versions == [SCHEMA_REVISION]


def skyline_tables_only(name, type_, _parent_names) -> bool:
    """The test database also holds tables of the test app's own models."""
    return type_ != "table" or name.startswith("skyline_")


def test_migration_matches_models(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": VERSION_TABLE, "include_name": skyline_tables_only},
        )
        assert compare_metadata(context, Base.metadata) == []
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("skyline_failed_jobs")}
    assert indexes["ix_skyline_failed_jobs_uuid"]["unique"]


def test_sqlite_runs_in_wal_mode_with_busy_timeout(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls_use_psycopg(scheme):
    engine = database_engine(f"{scheme}://app:secret@db.example:5432/skyline")
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.url.database == "skyline"


def test_record_and_get_by_id_or_uuid(failed):
    payload = '{"b": 1,  "a": "é\\u00e9"}\n'
    uuid = str(uuid4())
    id = record(failed, uuid=uuid, payload=payload, retry_of="older-uuid")
    by_id, by_text_id, by_uuid = failed.get(id), failed.get(str(id)), failed.get(uuid)
    assert by_id == by_text_id == by_uuid
    assert by_id.uuid == uuid and by_id.payload == payload and by_id.retry_of == "older-uuid"
    assert (by_id.retried_by, by_id.retried_at) == (None, None)
    assert failed.get(id + 1) is None and failed.get(str(uuid4())) is None


def test_failed_at_is_stored_as_aware_utc(failed):
    paris = timezone(timedelta(hours=1))
    given = record(failed, failed_at=datetime(2025, 3, 1, 13, 0, tzinfo=paris))
    assert failed.get(given).failed_at == T0
    assert failed.get(given).failed_at.tzinfo == UTC
    before = datetime.now(UTC)
    defaulted = record(failed, failed_at=None)
    assert before <= failed.get(defaulted).failed_at <= datetime.now(UTC)


def test_naive_datetimes_are_refused(failed):
    with pytest.raises(StatementError, match="naive datetime"):
        record(failed, failed_at=datetime(2025, 3, 1, 12, 0))


def test_same_uuid_updates_the_existing_row(failed):
    uuid = str(uuid4())
    first = record(failed, uuid=uuid, message="first", retry_of="older-uuid")
    second = record(failed, uuid=uuid, message="second", failed_at=T0 + timedelta(minutes=1))
    assert first == second
    assert failed.count() == 1
    row = failed.get(uuid)
    assert (row.message, row.failed_at, row.retry_of) == (
        "second",
        T0 + timedelta(minutes=1),
        "older-uuid",
    )


def test_by_uuids_reads_the_stored_ones_in_one_go(failed):
    first, second = str(uuid4()), str(uuid4())
    record(failed, uuid=first, message="first")
    record(failed, uuid=second, message="second")
    found = failed.by_uuids([first, second, "not-stored"])
    assert {uuid: r.message for uuid, r in found.items()} == {first: "first", second: "second"}
    assert failed.by_uuids([]) == {}


def test_remove_by_uuid(failed):
    uuid = str(uuid4())
    record(failed, uuid=uuid)
    assert failed.remove_by_uuid(uuid) is True
    assert failed.remove_by_uuid(uuid) is False
    assert failed.get(uuid) is None


def test_list_is_newest_first_with_filters_and_paging(failed):
    ids = [record(failed, failed_at=T0 + timedelta(minutes=n)) for n in range(5)]
    emails = record(failed, queue="emails", job_name="notify", failed_at=T0 - timedelta(hours=1))
    assert [r.id for r in failed.list()] == [*reversed(ids), emails]
    assert [r.id for r in failed.list(limit=2, offset=1)] == [ids[3], ids[2]]
    assert [r.id for r in failed.list(queue="emails")] == [emails]
    assert [r.id for r in failed.list(job_name="notify")] == [emails]
    assert [r.id for r in failed.list(since=T0 + timedelta(minutes=3))] == [ids[4], ids[3]]
    assert failed.list(queue="nope") == []


def test_count_with_filters(failed):
    for n in range(3):
        record(failed, failed_at=T0 + timedelta(minutes=n))
    record(failed, queue="emails", job_name="notify")
    assert failed.count() == 4
    assert failed.count(queue="default") == 3
    assert failed.count(job_name="notify") == 1
    assert failed.count(since=T0 + timedelta(minutes=1)) == 2
    assert failed.count(queue="emails", job_name="send_welcome") == 0


def pending_ids(failed: FailedJobRepository, **filters) -> list[int]:
    return [r.id for r in failed.pending_retries(**filters)]


def test_mark_retried_takes_a_row_out_of_pending_retries(failed):
    a, b = record(failed), record(failed)
    c = record(failed, queue="emails")
    assert pending_ids(failed) == [a, b, c]
    assert pending_ids(failed, queue="emails") == [c]
    new_uuid = str(uuid4())
    failed.mark_retried(b, new_uuid, at=T0)
    assert pending_ids(failed) == [a, c]
    assert (failed.get(b).retried_by, failed.get(b).retried_at) == (new_uuid, T0)
    failed.mark_retried(a, str(uuid4()))
    assert failed.get(a).retried_at.tzinfo == UTC


def test_mark_retried_many_links_each_row_to_its_own_retry(failed):
    a, b, untouched = record(failed), record(failed), record(failed)
    retries = [(a, str(uuid4())), (b, str(uuid4()))]
    failed.mark_retried_many(retries, at=T0)
    failed.mark_retried_many([])
    assert [(failed.get(id).retried_by, failed.get(id).retried_at) for id in (a, b)] == [
        (retries[0][1], T0),
        (retries[1][1], T0),
    ]
    assert pending_ids(failed) == [untouched]


def test_forget(failed):
    id = record(failed)
    assert failed.forget(id) is True
    assert failed.forget(id) is False
    assert failed.get(id) is None


def test_flush_deletes_everything(failed):
    for _ in range(3):
        record(failed)
    assert failed.flush() == 3
    assert failed.count() == 0
    assert failed.flush() == 0


def test_prune_deletes_rows_failed_strictly_before(failed):
    old = record(failed, failed_at=T0 - timedelta(microseconds=1))
    boundary = record(failed, failed_at=T0)
    assert failed.prune(T0) == 1
    assert failed.get(old) is None and failed.get(boundary) is not None


@pytest.mark.parametrize(("older", "chunks"), [(10, [3, 3, 3, 1]), (9, [3, 3, 3])])
def test_prune_in_chunks_deletes_exactly_the_rows_before_the_cutoff(failed, older, chunks):
    for _ in range(older):
        record(failed, failed_at=T0 - timedelta(hours=2))
    kept = [record(failed, failed_at=T0), record(failed, failed_at=T0 + timedelta(hours=1))]
    seen: list[int] = []

    assert failed.prune(T0, chunk=3, progress=seen.append) == older

    assert seen == chunks
    assert [r.id for r in failed.list(limit=100)] == kept[::-1]


def test_concurrent_writers_share_the_store(failed):
    def write(n: int) -> list[int]:
        return [record(failed, job_name=f"job-{n}") for _ in range(25)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [id for batch in pool.map(write, range(4)) for id in batch]
    assert len(set(ids)) == 100
    assert failed.count() == 100


def test_schema_revision_constant_is_alembic_head(database_url):
    assert alembic_head() == SCHEMA_REVISION
    assert schema_is_current(database_url)


# --- searching, and retrying many (the dashboard's failed list) ----------------------------


def test_search_finds_text_in_the_exception_class_or_message(failed):
    timeout = record(failed, exception_class="JobTimeoutError", message="ran over 30 s")
    value = record(failed, message="bad 100% value_x")
    assert [r.id for r in failed.list(search="timeout")] == [timeout]
    assert [r.id for r in failed.list(search="RAN OVER")] == [timeout]
    assert [r.id for r in failed.list(search="100%")] == [value]
    assert failed.list(search="1_0") == []  # % and _ are text, not wildcards
    assert failed.count(search="value") == 1
    assert failed.count(search="") == 2


def test_pending_retries_come_a_chunk_at_a_time_with_filters(failed):
    ids = [record(failed, job_name="a", message=f"boom {n}") for n in range(5)]
    other = record(failed, job_name="b")
    failed.mark_retried(ids[1], str(uuid4()))
    assert pending_ids(failed, job_name="a", limit=2) == [ids[0], ids[2]]
    assert pending_ids(failed, job_name="a", after=ids[2], limit=2) == [ids[3], ids[4]]
    assert pending_ids(failed, search="boom 4") == [ids[4]]
    assert pending_ids(failed, after=ids[4]) == [other]
    [whole] = failed.pending_retries(after=ids[4])
    assert whole == failed.get(other)


def test_pending_retries_leave_out_what_failed_at_or_after_the_cutoff(failed):
    before = record(failed, failed_at=T0 - timedelta(microseconds=1))
    record(failed, failed_at=T0)
    record(failed, failed_at=T0 + timedelta(minutes=1))
    assert pending_ids(failed, failed_before=T0) == [before]
