import datetime as dt
import os
import time

import pytest

from core import Job, JobOptions, dispatch_bulk, job, set_dispatcher
from core.dispatcher import Dispatcher, delay_seconds
from core.job import FunctionJob
from core.registry import registry
from core.testing import fake_queue
from tests.jobs import AsyncGreeting, FailingClassJob, Greeting, always_fails, noop, runs


@job
def doubled(n: int) -> int:
    return n * 2


@job(queue="emails", tries=3, backoff=(10, 60), timeout=30)
def send_welcome(user_id: int) -> None: ...


@job(name="custom-name")
def renamed_function() -> None: ...


class Renamed(Job):
    name = "renamed-class-job"

    def handle(self) -> None: ...


class Upload(Job):
    queue = "uploads"

    def __init__(self, path: str) -> None:
        self.path = path
        self._handle = object()

    @property
    def size(self) -> int:
        return 0

    def handle(self) -> None: ...


class NamedParent(Job):
    name = "named-parent"

    def handle(self) -> None: ...


class ChildOfNamed(NamedParent):
    pass


def test_bare_decorator_registers_under_module_and_name():
    assert isinstance(doubled, FunctionJob)
    assert doubled.name == "tests.test_dispatch_unit.doubled"
    assert registry.get(doubled.name).target is doubled.__wrapped__
    assert doubled.definition.options == JobOptions()


def test_decorated_function_can_still_be_called_directly():
    assert doubled(21) == 42


def test_decorator_arguments_become_definition_options():
    assert send_welcome.definition.options == JobOptions(
        queue="emails", tries=3, backoff=[10, 60], timeout=30
    )


def test_name_argument_overrides_the_registered_name():
    assert renamed_function.name == "custom-name"
    assert registry.get("custom-name").target is renamed_function.__wrapped__


def test_options_merge_over_definition_without_changing_it():
    prepared = send_welcome.options(queue="high", delay=30, tries=None).prepare(42)
    assert prepared.options == JobOptions(
        queue="high", delay=30, tries=3, backoff=[10, 60], timeout=30
    )
    assert (prepared.args, prepared.kwargs) == ([42], {})
    assert send_welcome.definition.options.queue == "emails"


def test_prepare_keeps_positional_and_keyword_arguments():
    prepared = send_welcome.prepare(1, extra="x")
    assert (prepared.args, prepared.kwargs, prepared.options.queue) == (
        [1],
        {"extra": "x"},
        "emails",
    )


def test_unknown_option_raises_type_error():
    with pytest.raises(TypeError, match="unknown job option\\(s\\): priority, qeue"):
        send_welcome.options(qeue="high", priority=1)


def test_unknown_option_on_the_decorator_raises_type_error():
    with pytest.raises(TypeError, match="unknown job option\\(s\\): retries"):

        @job(retries=3)
        def misspelt() -> None: ...


NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("delay", "expected"),
    [
        (None, 0.0),
        (0, 0.0),
        (30, 30.0),
        (2.5, 2.5),
        (-5, 0.0),
        (dt.timedelta(minutes=2), 120.0),
        (dt.timedelta(milliseconds=1), 0.001),
        (dt.timedelta(seconds=-1), 0.0),
        (dt.datetime(2030, 1, 1, 12, 1, 30, tzinfo=dt.UTC), 90.0),
        (dt.datetime(2030, 1, 1, 14, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), 90.0),
        (dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC), 0.0),
        (dt.datetime(2030, 1, 1, 11, 59, 59, tzinfo=dt.UTC), 0.0),
    ],
    ids=repr,
)
def test_delay_seconds(delay, expected):
    assert delay_seconds(delay, now=NOW) == expected


@pytest.fixture
def eastern_time(monkeypatch):
    monkeypatch.setenv("TZ", "EST5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_naive_datetime_delay_is_local_time(eastern_time):
    assert delay_seconds(dt.datetime(2030, 1, 1, 7, 1, 30), now=NOW) == 90.0


@pytest.mark.parametrize("delay", [True, "30", [30]])
def test_delay_of_another_type_raises_type_error(delay):
    with pytest.raises(TypeError, match="a delay is seconds, a timedelta or a datetime"):
        delay_seconds(delay, now=NOW)


def test_job_class_registers_with_its_class_options():
    definition = registry.get("tests.jobs.Greeting")
    assert definition.target is Greeting
    assert definition.is_class
    assert definition.options == JobOptions(queue="greetings", tries=2)


def test_job_class_name_attribute_overrides_the_registered_name():
    assert registry.get("renamed-class-job").target is Renamed


def test_job_subclass_registers_under_its_own_name():
    assert registry.get("tests.test_dispatch_unit.ChildOfNamed").target is ChildOfNamed
    assert registry.get("named-parent").target is NamedParent


def test_job_prepare_captures_public_attributes_only():
    prepared = Upload("/tmp/a.mp3").prepare(queue="fast")
    assert prepared.definition.name == "tests.test_dispatch_unit.Upload"
    assert (prepared.args, prepared.kwargs) == ([], {"path": "/tmp/a.mp3"})
    assert prepared.options.queue == "fast"
    assert Upload("/x").prepare().options.queue == "uploads"


def test_fake_queue_records_instead_of_pushing():
    with fake_queue() as queue:
        job_id = send_welcome.dispatch(42)
        Greeting("Ada").dispatch()
        dispatch_bulk([doubled.prepare(1), Greeting("Grace")])
    assert isinstance(job_id, str)
    assert [j.definition.name for j in queue.jobs] == [
        "tests.test_dispatch_unit.send_welcome",
        "tests.jobs.Greeting",
        "tests.test_dispatch_unit.doubled",
        "tests.jobs.Greeting",
    ]


def test_fake_queue_restores_the_previous_dispatcher():
    with fake_queue() as outer:
        with fake_queue() as inner:
            doubled.dispatch(1)
        doubled.dispatch(2)
    assert [j.args for j in inner.jobs] == [[1]]
    assert [j.args for j in outer.jobs] == [[2]]


@pytest.mark.parametrize("ref", [send_welcome, "tests.test_dispatch_unit.send_welcome"])
def test_assert_pushed_accepts_function_or_name(ref):
    with fake_queue() as queue:
        send_welcome.dispatch(42)
    queue.assert_pushed(ref)


@pytest.mark.parametrize("ref", [Greeting, "tests.jobs.Greeting"])
def test_assert_pushed_accepts_class_or_name(ref):
    with fake_queue() as queue:
        Greeting("Ada").dispatch()
    queue.assert_pushed(ref)


WELCOME = "tests.test_dispatch_unit.send_welcome"


def failure(check) -> str:
    """The message of the AssertionError that ``check`` raises."""
    with pytest.raises(AssertionError) as error:
        check()
    return str(error.value)


def test_assert_pushed_fails_when_not_pushed():
    with fake_queue() as queue:
        doubled.dispatch(1)
    assert failure(lambda: queue.assert_pushed(send_welcome)) == f"{WELCOME} was not pushed"


def test_assert_pushed_with_predicate():
    with fake_queue() as queue:
        send_welcome.dispatch(42)
        Greeting("Ada").dispatch()
    queue.assert_pushed(send_welcome, lambda j: j.args == [42])
    queue.assert_pushed(Greeting, lambda j: j.kwargs["name"] == "Ada")
    assert failure(lambda: queue.assert_pushed(send_welcome, lambda j: j.args == [7])) == (
        f"{WELCOME} was not pushed matching the condition"
    )


def test_assert_pushed_with_count():
    with fake_queue() as queue:
        send_welcome.dispatch(1)
        send_welcome.dispatch(2)
    queue.assert_pushed(send_welcome, 2)
    queue.assert_pushed(doubled, 0)
    assert failure(lambda: queue.assert_pushed(send_welcome, 1)) == (
        f"{WELCOME} was pushed 2 times, not 1"
    )


def test_assert_pushed_on():
    with fake_queue() as queue:
        send_welcome.options(queue="high").dispatch(1)
        doubled.dispatch(2)
        Greeting("Ada").dispatch()
    queue.assert_pushed_on("high", send_welcome)
    queue.assert_pushed_on("high", send_welcome, lambda j: j.args == [1])
    queue.assert_pushed_on("default", doubled)
    queue.assert_pushed_on("greetings", Greeting)
    assert failure(lambda: queue.assert_pushed_on("emails", send_welcome)) == (
        f"{WELCOME} was not pushed on 'emails'"
    )
    assert failure(
        lambda: queue.assert_pushed_on("high", send_welcome, lambda j: j.args == [2])
    ) == (f"{WELCOME} was not pushed on 'high' matching the condition")


def test_assert_not_pushed():
    with fake_queue() as queue:
        send_welcome.dispatch(1)
    queue.assert_not_pushed(doubled)
    queue.assert_not_pushed(send_welcome, lambda j: j.args == [2])
    assert failure(lambda: queue.assert_not_pushed(send_welcome)) == (
        f"{WELCOME} was pushed 1 times"
    )
    assert failure(lambda: queue.assert_not_pushed(send_welcome, lambda j: j.args == [1])) == (
        f"{WELCOME} was pushed 1 times matching the condition"
    )


def test_assert_nothing_pushed():
    with fake_queue() as queue:
        pass
    queue.assert_nothing_pushed()
    with fake_queue() as queue:
        send_welcome.dispatch(1)
        Greeting("Ada").dispatch()
        send_welcome.dispatch(2)
    assert failure(queue.assert_nothing_pushed) == (
        f"jobs were pushed: tests.jobs.Greeting, {WELCOME}"
    )


def test_assert_count():
    with fake_queue() as queue:
        send_welcome.dispatch(1)
        doubled.dispatch(2)
    queue.assert_count(2)
    assert failure(lambda: queue.assert_count(3)) == "2 jobs were pushed, not 3"


def test_assert_pushed_finds_a_subclass_of_a_named_job():
    with fake_queue() as queue:
        ChildOfNamed().dispatch()
    queue.assert_pushed(ChildOfNamed)


@pytest.fixture
def sync_dispatcher(settings, record_dir, monkeypatch):
    monkeypatch.setenv("SKYLINE_TEST_RECORD_DIR", str(record_dir))
    return Dispatcher(settings.model_copy(update={"default_connection": "sync"}))


def test_sync_connection_runs_the_job_in_this_process(sync_dispatcher, record_dir, redis_client):
    previous = set_dispatcher(sync_dispatcher)
    try:
        job_id = noop.dispatch(5)
    finally:
        set_dispatcher(previous)
    [run] = runs(record_dir, "noop")
    assert (run["n"], run["pid"]) == (5, os.getpid())
    assert isinstance(job_id, str)
    assert redis_client.keys("*") == []


def test_sync_connection_runs_class_and_async_jobs(sync_dispatcher, record_dir):
    sync_dispatcher.dispatch([Greeting("Ada", times=2).prepare(), AsyncGreeting("Grace").prepare()])
    assert [(r["name"], r["times"]) for r in runs(record_dir, "greeting")] == [("Ada", 2)]
    assert [r["name"] for r in runs(record_dir, "async_greeting")] == ["Grace"]


def test_sync_option_on_one_dispatch_runs_inline(settings, record_dir, monkeypatch):
    monkeypatch.setenv("SKYLINE_TEST_RECORD_DIR", str(record_dir))
    Dispatcher(settings).dispatch([noop.options(connection="sync").prepare(3)])
    assert [r["n"] for r in runs(record_dir, "noop")] == [3]


def test_sync_class_job_calls_failed_then_reraises(sync_dispatcher, record_dir):
    with pytest.raises(KeyError) as error:
        sync_dispatcher.dispatch([FailingClassJob(7).prepare()])
    assert error.value.args == (7,)
    [hook] = runs(record_dir, "class_failed_hook")
    assert (hook["n"], hook["error"]) == (7, "KeyError(7)")


def test_sync_function_job_runs_once_calls_on_failed_then_reraises(sync_dispatcher, record_dir):
    with pytest.raises(ValueError, match="always fails 3"):
        sync_dispatcher.dispatch([always_fails.prepare(3)])
    assert len(runs(record_dir, "always_fails")) == 1
    [hook] = runs(record_dir, "failed_hook")
    assert (hook["n"], hook["error"]) == (3, "always fails 3")
