"""Script calls in pipelines: one round trip, and a Redis that lost its scripts still works."""

from __future__ import annotations

import pytest
import redis

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


def test_an_error_reply_is_raised_once_every_command_of_the_round_trip_ran(redis_client):
    redis_client.set("text", "x")
    pipe = redis_client.pipeline(transaction=False)
    pipe.incr("n").hget("text", "field").incr("n")

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        execute(pipe)

    assert redis_client.get("n") == b"2"
    assert execute(redis_client.pipeline(transaction=False).incr("n")) == [3]


def test_a_connection_redis_closed_is_replaced_before_the_round_trip(redis_client, redis_url):
    assert execute(redis_client.pipeline(transaction=False).incr("n")) == [1]
    killed = redis_client.client_id()
    with redis.Redis.from_url(redis_url) as other:
        other.client_kill_filter(_id=killed)

    assert execute(redis_client.pipeline(transaction=False).incr("n")) == [2]
    assert redis_client.client_id() != killed


@pytest.mark.parametrize("name", ["record_pushed", "record_finished"])
def test_a_script_is_sent_with_the_shared_lua_it_includes(name):
    source = lua_source(name)

    assert "-- include" not in source
    assert source.count("local function free_score") == 1
    assert source.index("local function free_score") < source.rindex("free_score(")
