"""`skyline start`: masters, supervisors and their pools, with real processes and Redis."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from core.control import ControlRepository
from tests import jobs
from tests.conftest import ROOT, skyline_command, start_redis_server, wait_until
from tests.jobs import runs

pytestmark = pytest.mark.slow

STAYS_PAUSED_S = 1.0

POOLS = """
[connections.redis]
retry_after = 3

[defaults.work]
queues = ["default"]
balance = "auto"
min_processes = 1
max_processes = 4
balance_max_shift = 1
balance_cooldown = 0.5
timeout = 30

[environments.local.work]
"""


@pytest.fixture
def master(worker_env, tmp_path):
    """Start `skyline start` processes; each is stopped (and its workers) at teardown."""
    config = tmp_path / "skyline.toml"
    config.write_text(POOLS)
    worker_env["SKYLINE_CONFIG"] = str(config)
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            skyline_command("-v", "start", "--name", name),
            env=worker_env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = tmp_path / f"{name}.log"
        started.append(process)
        return process

    yield start
    for process in started:
        children = _workers(process)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for child in children:
            child.kill()


def _workers(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children()
    except psutil.NoSuchProcess:
        return []


def any_running(processes: list[psutil.Process]) -> bool:
    return any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)


def alive_workers(process: subprocess.Popen) -> int:
    return sum(1 for p in _workers(process) if p.status() != psutil.STATUS_ZOMBIE)


def status(skyline) -> tuple[int, dict]:
    result = skyline("status", "--json")
    return result.returncode, json.loads(result.stdout or "{}")


def test_a_burst_grows_the_pool_to_max_and_idle_shrinks_it_to_min(runtime, master, record_dir):
    process = master("m1")
    wait_until(lambda: alive_workers(process) == 1, timeout_s=20)

    runtime.dispatcher.dispatch([jobs.slow.prepare(n, 0.2) for n in range(120)])

    wait_until(lambda: alive_workers(process) == 4, timeout_s=30)
    wait_until(lambda: len(runs(record_dir, "slow_end")) == 120, timeout_s=60)
    wait_until(lambda: alive_workers(process) == 1, timeout_s=30)


def test_a_killed_worker_is_replaced(runtime, master):
    process = master("m1")
    wait_until(lambda: alive_workers(process) == 1, timeout_s=20)
    [worker] = _workers(process)

    worker.kill()

    wait_until(lambda: [p for p in _workers(process) if p.pid != worker.pid], timeout_s=20)


def test_pause_stops_picking_jobs_and_continue_resumes(runtime, master, skyline, record_dir):
    process = master("m1")
    wait_until(lambda: status(skyline)[0] == 0 and alive_workers(process) == 1, timeout_s=20)

    assert skyline("pause").returncode == 0
    wait_until(lambda: status(skyline)[0] == 1, timeout_s=10)
    jobs.noop.dispatch(1)
    continued_at = time.time()
    assert skyline("continue").returncode == 0

    [run] = wait_until(lambda: runs(record_dir, "noop"), timeout_s=10)
    assert run["t"] >= continued_at, "no job may start while paused"
    wait_until(lambda: status(skyline)[0] == 0, timeout_s=10)


def test_a_pause_that_reaches_a_starting_worker_keeps_it_alive_and_idle(
    runtime, master, record_dir
):
    control = ControlRepository(runtime.queue().client, runtime.dispatcher.keys)
    process = master("m1")
    [worker] = wait_until(lambda: _workers(process), timeout_s=20)

    control.send("m1", "pause")  # read next tick, mostly while the worker still imports
    wait_until(lambda: "paused: no new jobs" in process.log_path.read_text(), timeout_s=20)
    jobs.noop.dispatch(1)

    deadline = time.monotonic() + STAYS_PAUSED_S
    while time.monotonic() < deadline:  # this bounded wait is the assertion
        assert runtime.queue().sizes("default")["ready"] == 1, "a paused worker took a job"
        assert _workers(process) == [worker], "the paused worker died"
        time.sleep(0.05)
    control.send("m1", "continue")
    wait_until(lambda: runs(record_dir, "noop"), timeout_s=10)
    assert _workers(process) == [worker]


def test_terminate_waits_for_the_running_job(runtime, master, skyline, record_dir):
    process = master("m1")
    wait_until(lambda: alive_workers(process) == 1, timeout_s=20)
    jobs.slow.dispatch(1, 1.5)
    wait_until(lambda: runs(record_dir, "slow_start"))

    result = skyline("terminate", "--wait", "--timeout", "30")

    assert result.returncode == 0, result.stderr
    assert process.wait(timeout=10) == 0
    assert [r["n"] for r in runs(record_dir, "slow_end")] == [1]
    assert status(skyline)[0] == 2


def test_sigterm_followed_by_sigcont_still_terminates(runtime, master):
    """`timeout` and job-control shells send SIGCONT right behind a stop signal; the
    master once read only the last signal of a tick, and "continue" lost the terminate."""
    process = master("m1")
    wait_until(lambda: alive_workers(process) == 1, timeout_s=20)
    workers = _workers(process)

    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGCONT)

    assert process.wait(timeout=20) == 0
    assert not any_running(workers)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[subprocess.Popen]:
    """A redis-server of the test's own, to shut down; stopped at teardown if still up."""
    process, url = start_redis_server(tmp_path)
    process.url = url
    yield process
    process.kill()
    process.wait()


def test_sigterm_stops_the_master_while_redis_is_down(runtime, master, worker_env, private_redis):
    """A signal is obeyed before the tick reads Redis, so `systemctl stop` works on a
    host whose Redis has gone away."""
    worker_env["REDIS_URL"] = private_redis.url
    process = master("m1")
    wait_until(lambda: alive_workers(process) == 1, timeout_s=20)
    workers = _workers(process)

    private_redis.kill()
    private_redis.wait()
    wait_until(lambda: "Redis error" in process.log_path.read_text(), timeout_s=10)
    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=20) == 0
    assert not any_running(workers)


def test_a_killed_master_leaves_no_worker_and_its_jobs_run_later(runtime, master, record_dir):
    first = master("m1")
    wait_until(lambda: alive_workers(first) == 1, timeout_s=20)
    jobs.slow.dispatch(1, 0.5)
    wait_until(lambda: runs(record_dir, "slow_start"))
    orphans = _workers(first)

    first.kill()
    first.wait()

    wait_until(lambda: not any_running(orphans), timeout_s=20)
    master("m2")
    wait_until(lambda: runs(record_dir, "slow_end"), timeout_s=30)


def test_two_masters_share_one_redis(runtime, master, skyline):
    master("host-a")
    master("host-b")

    wait_until(
        lambda: set(status(skyline)[1].get("masters", {})) == {"host-a", "host-b"}, timeout_s=20
    )
    listing = skyline("list")
    assert "host-a:work" in listing.stdout and "host-b:work" in listing.stdout
    assert skyline("pause", "--master", "host-a").returncode == 0
    wait_until(
        lambda: status(skyline)[1]["masters"] == {"host-a": "paused", "host-b": "running"},
        timeout_s=10,
    )


def test_one_supervisor_can_be_paused_and_continued(runtime, master, skyline):
    master("m1")
    wait_until(
        lambda: status(skyline)[1].get("supervisors") == {"m1:work": "running"}, timeout_s=20
    )

    assert skyline("supervisor", "pause", "m1:work").returncode == 0
    wait_until(lambda: status(skyline)[1]["supervisors"] == {"m1:work": "paused"}, timeout_s=10)
    assert status(skyline)[1]["masters"] == {"m1": "running"}

    assert skyline("supervisor", "continue", "m1:work").returncode == 0
    wait_until(lambda: status(skyline)[1]["supervisors"] == {"m1:work": "running"}, timeout_s=10)


def test_commands_for_unknown_masters_or_supervisors_are_refused(runtime, skyline):
    assert "no running master" in skyline("pause", "--master", "ghost").stderr
    assert "no running supervisor" in skyline("supervisor", "pause", "ghost:work").stderr


def test_config_check_runs_through_the_skyline_command(runtime, master, skyline):
    master("unused")  # writes the pool config the fixture provides

    result = skyline("config", "check")

    assert result.returncode == 0 and "OK: 1 supervisor" in result.stdout


def test_the_master_takes_metric_snapshots_on_schedule(runtime, master, tmp_path):
    from core.snapshots import SnapshotRepository

    every_second = "[metrics]\nsnapshot_interval = 1\n\n[connections.redis]"
    config = tmp_path / "skyline.toml"
    config.write_text(config.read_text().replace("[connections.redis]", every_second))
    process = master("m1")
    wait_until(lambda: alive_workers(process) == 1, timeout_s=20)

    jobs.noop.dispatch(1)

    snapshots = SnapshotRepository(runtime.engine)
    wait_until(lambda: "tests.jobs.noop" in snapshots.names("job"), timeout_s=20)
