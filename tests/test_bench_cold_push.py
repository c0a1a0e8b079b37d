"""bench/cold_push.py: a push is split at the moment redis-py sends it, Redis's part is read from
SLOWLOG by script, Redis's own SLOWLOG settings come back afterwards, and ``--cpus`` pins Redis
and the script where it says. Timings are never asserted, only what each figure is made of."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from bench.cold_push import Pushes, cpu_pair, measure, pin, table
from tests.jobs import noop


def test_a_dispatch_is_split_at_its_send_and_its_redis_time_named_by_script(runtime, redis_client):
    before = redis_client.config_get("slowlog-*")

    pushes = measure(redis_client, "dispatch", noop.dispatch, samples=5, idle_s=0.001)

    assert 0 < pushes.before_send_us < pushes.whole_us
    assert pushes.redis_us > 0
    assert "push.lua x1" in pushes.commands
    assert "record_pushed.lua x1" in pushes.commands
    assert "HSET" not in pushes.commands  # the record script's own command is in its time
    assert "SLOWLOG" not in pushes.commands and "CONFIG" not in pushes.commands
    assert redis_client.config_get("slowlog-*") == before


def test_a_bare_rpush_is_one_command_of_its_own(redis_client):
    pushes = measure(
        redis_client, "rpush", lambda: redis_client.rpush("floor", "x"), samples=5, idle_s=0
    )

    assert pushes.commands == "RPUSH x1"


def test_the_table_gives_the_idle_ratio_and_none_where_the_back_to_back_figure_rounds_to_zero():
    warm = Pushes("the floor", before_send_us=10, whole_us=40, redis_us=0, commands="RPUSH x1")
    cold = Pushes("the floor", before_send_us=150, whole_us=400, redis_us=9, commands="RPUSH x1")

    lines = table([(warm, cold)], idle_ms=20).splitlines()

    assert "after 20 ms idle" in lines[0]
    assert lines[1] == "the floor (RPUSH x1)"
    assert lines[2].split() == ["before", "it", "sends", "10", "150", "15.0x"]
    assert lines[3].split() == ["the", "whole", "call", "40", "400", "10.0x"]
    assert lines[4].split() == ["in", "Redis", "0", "9", "-"]


def test_cpus_names_redis_then_the_script_and_only_cpus_this_machine_has():
    last = max(os.sched_getaffinity(0))

    assert cpu_pair(f"{last},0") == (last, 0)
    for wrong in ("0", "0,1,2", "a,b", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="two CPU numbers"):
            cpu_pair(wrong)
    with pytest.raises(argparse.ArgumentTypeError, match=f"CPU {last + 1} is not one this process"):
        cpu_pair(f"0,{last + 1}")


def test_pin_puts_each_process_on_its_own_cpu():
    last = max(os.sched_getaffinity(0))
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    sleepers = [subprocess.Popen(sleeper), subprocess.Popen(sleeper)]
    try:
        said = pin(sleepers[0].pid, sleepers[1].pid, (last, 0))

        assert os.sched_getaffinity(sleepers[0].pid) == {last}
        assert os.sched_getaffinity(sleepers[1].pid) == {0}
        assert said == f"Redis on CPU {last}, this script on CPU 0"
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
