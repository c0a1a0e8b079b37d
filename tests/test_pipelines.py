"""Script calls in pipelines: one round trip, and a Redis that lost its scripts still works."""

from __future__ import annotations

import pytest

from core.keys import Keys
from core.pipelines import call, execute, lua_source, register
from core.queue import RedisQueue


def test_a_script_redis_forgot_is_sent_again_and_the_rest_runs_once(redis_client):
    script = register(redis_client, "metrics_add")
    pipe = redis_client.pipeline(transaction=False)
    call(pipe, script, ["interval"], [1, 0, "processed", 2])
    execute(pipe)
    redis_client.script_flush()

    pipe.incr("plain")
    call(pipe, script, ["interval"], [1, 0, "processed", 3])
    pipe.incr("plain")
    replies = execute(pipe)

    assert replies == [1, 1, 2]
    assert redis_client.hget("interval", "processed") == b"5"
    assert redis_client.get("plain") == b"2"


def test_the_worker_s_ack_and_pop_survives_a_script_flush(redis_client):
    queue = RedisQueue(redis_client, Keys("skyline:"))
    queue.push_groups({"q": ["a", "b"]})
    first = queue.pop("q", ["t1"], 30).reserved
    redis_client.script_flush()

    popped, lost = queue.ack_and_pop(first, "q", ["t2"], 30)

    assert ([r.raw for r in popped.reserved], lost) == (["b"], 0)
    assert redis_client.zcard("skyline:{queue:q}:reserved") == 1


@pytest.mark.parametrize("name", ["record_pushed", "record_finished"])
def test_a_script_is_sent_with_the_shared_lua_it_includes(name):
    source = lua_source(name)

    assert "-- include" not in source
    assert source.count("local function free_score") == 1
    assert source.index("local function free_score") < source.rindex("free_score(")
