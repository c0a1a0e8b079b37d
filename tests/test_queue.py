"""The Redis queue protocol against a real Redis: keys, push, pop, leases, notify, poison."""

from __future__ import annotations

import json
import pickle
import threading
import time
from typing import ClassVar

import pytest
import redis

from core.dispatcher import make_body
from core.keys import Keys, QueueKeys
from core.payload import build, now_ms, parse
from core.queue import NOTIFY_CAP, RedisQueue, Reservation
from tests.conftest import SECRET, wait_until
from tests.jobs import noop

QUEUE = "emails"
LEASE_S = 30
TINY_LEASE_S = 0.05
DELAY_MS = 200


@pytest.fixture
def queue(redis_client: redis.Redis) -> RedisQueue:
    return RedisQueue(redis_client, Keys("skyline:"))


@pytest.fixture
def k(queue: RedisQueue) -> QueueKeys:
    return queue.keys.queue(QUEUE)


def payload(n: int = 0, available_at: int | None = None) -> str:
    body = make_body(noop.prepare(n), "redis")
    return build(body, SECRET, available_at=now_ms() if available_at is None else available_at)


def job_id(raw: str | bytes) -> str:
    return json.loads(json.loads(raw)["body"])["id"]


def everywhere(client: redis.Redis, k: QueueKeys) -> list[bytes]:
    """Every payload the queue holds, ready, delayed or reserved."""
    return [
        *client.lrange(k.ready, 0, -1),
        *client.zrange(k.delayed, 0, -1),
        *client.zrange(k.reserved, 0, -1),
    ]


def pop_one(queue: RedisQueue, token: str = "t1", lease_s: float = LEASE_S) -> Reservation:
    (reservation,) = queue.pop(QUEUE, [token], lease_s).reserved
    return reservation


def lose_lease(queue: RedisQueue, client: redis.Redis, k: QueueKeys) -> Reservation:
    """Reserve the only job under a tiny lease, then let a token-less pop migrate it back."""
    stale = pop_one(queue, "old", TINY_LEASE_S)

    def migrated() -> bool:
        queue.pop(QUEUE, [], LEASE_S)
        return client.llen(k.ready) == 1

    wait_until(migrated, timeout_s=5, message="the expired lease was never migrated back")
    return stale


# --- keys -----------------------------------------------------------------------------------


def test_queue_keys_share_one_hash_tag():
    k = Keys("skyline:").queue(QUEUE)
    assert k.as_list() == [
        "skyline:{queue:emails}",
        "skyline:{queue:emails}:delayed",
        "skyline:{queue:emails}:reserved",
        "skyline:{queue:emails}:notify",
    ]


def test_operations_write_the_documented_keys(queue, redis_client):
    queue.push_groups({QUEUE: [payload(1), payload(2)]}, {QUEUE: [(now_ms() + 60_000, payload(3))]})
    queue.pop(QUEUE, ["t1"], LEASE_S)
    types = {key: redis_client.type(key) for key in redis_client.keys("*")}
    assert types == {
        b"skyline:{queue:emails}": b"list",
        b"skyline:{queue:emails}:delayed": b"zset",
        b"skyline:{queue:emails}:reserved": b"zset",
        b"skyline:{queue:emails}:notify": b"list",
    }


def test_runtime_queue_uses_the_settings_prefix(runtime, redis_client):
    runtime.queue().push_groups({QUEUE: ["x"]})
    assert redis_client.exists(f"{runtime.settings.prefix}{{queue:{QUEUE}}}") == 1


# --- push_groups ----------------------------------------------------------------------------


def test_push_groups_fills_several_queues_ready_and_later(queue):
    later = now_ms() + 60_000
    queue.push_groups(
        {"a": ["a1", "a2"], "b": ["b1"]},
        {"a": [(later, "a3")], "c": [(later, "c1"), (later + 1, "c2")]},
    )
    assert [queue.sizes(name) for name in "abc"] == [
        {"ready": 2, "delayed": 1, "reserved": 0},
        {"ready": 1, "delayed": 0, "reserved": 0},
        {"ready": 0, "delayed": 2, "reserved": 0},
    ]


def test_push_groups_keeps_order_within_a_queue(queue, redis_client, k):
    queue.push_groups({QUEUE: ["1", "2"]})
    queue.push_groups({QUEUE: ["3"]})
    assert redis_client.lrange(k.ready, 0, -1) == [b"1", b"2", b"3"]


def test_push_groups_accepts_a_large_batch(queue):
    queue.push_groups({QUEUE: [str(n) for n in range(10_000)]})
    assert queue.sizes(QUEUE)["ready"] == 10_000


class CountingConnection(redis.Connection):
    """A real connection that records each write. redis-py writes a whole request (one
    command, or a whole pipeline) with one ``send_packed_command`` and then reads its
    replies, so the number of writes is the number of round trips."""

    writes: ClassVar[list[bytes]] = []

    def send_packed_command(self, command, check_health=True):
        chunks = [command] if isinstance(command, bytes | str) else command
        self.writes.append(b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks))
        super().send_packed_command(command, check_health)


def push_round_trips(redis_url: str, queues: int) -> list[bytes]:
    """The writes one push_groups call makes, after a warm-up that connects and loads scripts."""
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    queue = RedisQueue(redis.Redis(connection_pool=pool), Keys("skyline:"))
    ready = {f"q{n}": ["a", "b"] for n in range(queues)}
    later = {f"q{n}": [(now_ms() + 60_000, "c")] for n in range(queues)}
    queue.push_groups(ready, later)
    CountingConnection.writes = []
    queue.push_groups(ready, later)
    pool.disconnect()
    return CountingConnection.writes


@pytest.mark.parametrize("queues", [1, 5])
def test_push_groups_sends_every_script_call_in_one_write(redis_url, queues):
    writes = push_round_trips(redis_url, queues)
    script_writes = [w for w in writes if b"EVALSHA" in w]
    assert len(script_writes) == 1
    assert script_writes[0].count(b"EVALSHA") == 2 * queues


def test_push_groups_round_trips_do_not_grow_with_queues(redis_url):
    assert len(push_round_trips(redis_url, 1)) == len(push_round_trips(redis_url, 8))


def test_a_push_to_one_queue_is_one_round_trip(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    queue = RedisQueue(redis.Redis(connection_pool=pool), Keys("skyline:"))
    queue.push_groups({"q": ["warm-up"]})
    CountingConnection.writes = []
    queue.push_groups({"q": [str(n) for n in range(100)]})
    pool.disconnect()
    assert len(CountingConnection.writes) == 1


# --- pop ------------------------------------------------------------------------------------


def test_pop_returns_jobs_in_fifo_order(queue):
    pushed = [payload(n) for n in range(3)]
    queue.push_groups({QUEUE: pushed})
    popped = [pop_one(queue, f"t{n}") for n in range(3)]
    assert [job_id(r.raw) for r in popped] == [job_id(p) for p in pushed]


def test_pop_counts_the_attempt_and_stores_the_lease_in_the_reserved_member(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload()]})
    reservation = pop_one(queue, "token-1")
    job = parse(reservation.raw, [SECRET])
    assert (job.attempts, job.lease, reservation.queue) == (1, "token-1", QUEUE)
    assert redis_client.zrange(k.reserved, 0, -1) == [reservation.raw.encode()]


def test_pop_counts_attempts_across_releases(queue):
    queue.push_groups({QUEUE: [payload()]})
    for attempt in (1, 2, 3):
        reservation = pop_one(queue, f"t{attempt}")
        job = parse(reservation.raw, [SECRET])
        assert job.attempts == attempt
        assert queue.release(reservation, job.released(0, exception=True), 0)


def test_pop_sets_the_deadline_to_now_plus_lease(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload()]})
    before = now_ms()
    reservation = pop_one(queue, lease_s=LEASE_S)
    after = now_ms()
    deadline = redis_client.zscore(k.reserved, reservation.raw)
    assert before + LEASE_S * 1000 <= deadline <= after + LEASE_S * 1000


@pytest.mark.parametrize(("pushed", "tokens", "reserved"), [(5, 3, 3), (2, 3, 2), (0, 3, 0)])
def test_pop_with_several_tokens_reserves_several_jobs(queue, pushed, tokens, reserved):
    queue.push_groups({QUEUE: [payload(n) for n in range(pushed)]} if pushed else {})
    names = [f"t{n}" for n in range(tokens)]
    popped = queue.pop(QUEUE, names, LEASE_S).reserved
    assert [parse(r.raw, [SECRET]).lease for r in popped] == names[:reserved]
    assert queue.sizes(QUEUE) == {"ready": pushed - reserved, "delayed": 0, "reserved": reserved}


@pytest.mark.parametrize(
    ("delayed_in_ms", "reserved_for_s"),
    [(None, None), (60_000, None), (None, LEASE_S), (60_000, LEASE_S), (10_000, LEASE_S)],
)
def test_pop_on_an_empty_queue_reports_the_next_due_time(
    queue, redis_client, k, delayed_in_ms, reserved_for_s
):
    if delayed_in_ms is not None:
        queue.push_groups({}, {QUEUE: [(now_ms() + delayed_in_ms, payload(1))]})
    if reserved_for_s is not None:
        queue.push_groups({QUEUE: [payload(2)]})
        pop_one(queue, lease_s=reserved_for_s)
    firsts = [redis_client.zrange(key, 0, 0, withscores=True) for key in (k.delayed, k.reserved)]
    scores = [int(score) for first in firsts for _, score in first]
    popped = queue.pop(QUEUE, ["t9"], LEASE_S)
    assert popped.reserved == []
    assert popped.next_due_ms == (min(scores) if scores else None)


def test_pop_that_reserves_reports_no_next_due_time(queue):
    queue.push_groups({QUEUE: [payload()]}, {QUEUE: [(now_ms() + 60_000, payload())]})
    assert queue.pop(QUEUE, ["t1"], LEASE_S).next_due_ms is None


# --- delayed jobs ---------------------------------------------------------------------------


def test_delayed_job_is_not_popped_before_its_time_and_is_popped_once_due(queue):
    available_at = now_ms() + DELAY_MS
    queue.push_groups({}, {QUEUE: [(available_at, payload())]})
    early = queue.pop(QUEUE, ["early"], LEASE_S)
    assert (early.reserved, early.next_due_ms) == ([], available_at)
    (reservation,) = wait_until(lambda: queue.pop(QUEUE, ["t1"], LEASE_S).reserved, timeout_s=5)
    # reserved_at is the pop script's own clock: the job was reserved no earlier than due.
    assert parse(reservation.raw, [SECRET]).reserved_at >= available_at


def test_due_delayed_jobs_queue_behind_ready_ones(queue):
    ready, due = payload(1), payload(2)
    queue.push_groups({QUEUE: [ready]}, {QUEUE: [(now_ms() - 1, due)]})
    popped = queue.pop(QUEUE, ["t1", "t2"], LEASE_S).reserved
    assert [job_id(r.raw) for r in popped] == [job_id(ready), job_id(due)]


# --- ack ------------------------------------------------------------------------------------


def test_ack_succeeds_once(queue, redis_client):
    queue.push_groups({QUEUE: [payload()]})
    reservation = pop_one(queue)
    assert queue.ack(reservation) is True
    assert queue.ack(reservation) is False
    assert redis_client.keys("*") == []


def test_ack_with_an_earlier_reservation_of_the_same_job_fails(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload()]})
    stale = lose_lease(queue, redis_client, k)
    current = pop_one(queue, "new")
    assert job_id(stale.raw) == job_id(current.raw)
    assert queue.ack(stale) is False
    assert queue.ack(current) is True


# --- release --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("available_in_ms", "where"), [(-1_000, "ready"), (0, "ready"), (60_000, "delayed")]
)
def test_release_puts_the_job_back(queue, redis_client, k, available_in_ms, where):
    queue.push_groups({QUEUE: [payload()]})
    reservation = pop_one(queue)
    available_at = now_ms() + available_in_ms
    new_raw = parse(reservation.raw, [SECRET]).released(available_at, exception=True)
    assert queue.release(reservation, new_raw, available_at) is True
    assert queue.sizes(QUEUE) == {"ready": 0, "delayed": 0, "reserved": 0, where: 1}
    assert everywhere(redis_client, k) == [new_raw.encode()]


def test_release_with_a_stale_lease_fails_and_duplicates_nothing(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload()]})
    stale = lose_lease(queue, redis_client, k)
    current = pop_one(queue, "new")
    new_raw = parse(stale.raw, [SECRET]).released(0, exception=False)
    assert queue.release(stale, new_raw, 0) is False
    assert everywhere(redis_client, k) == [current.raw.encode()]


# --- expired leases -------------------------------------------------------------------------


def test_expired_lease_is_migrated_back_with_the_loss_counted(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload()]})
    lose_lease(queue, redis_client, k)
    (raw,) = everywhere(redis_client, k)
    job = parse(raw, [SECRET])
    assert (job.lost, job.lease, job.attempts) == (1, None, 1)
    again = parse(pop_one(queue, "new").raw, [SECRET])
    assert (again.lost, again.lease, again.attempts) == (1, "new", 2)


@pytest.mark.parametrize("action", ["ack", "release", "renew"])
def test_the_holder_of_an_expired_lease_can_do_nothing(queue, redis_client, k, action):
    queue.push_groups({QUEUE: [payload()]})
    stale = lose_lease(queue, redis_client, k)
    done = {
        "ack": lambda: queue.ack(stale),
        "release": lambda: queue.release(stale, stale.raw, 0),
        "renew": lambda: queue.renew([stale], LEASE_S)[0],
    }[action]()
    assert done is False
    assert queue.sizes(QUEUE) == {"ready": 1, "delayed": 0, "reserved": 0}
    assert parse(everywhere(redis_client, k)[0], [SECRET]).lost == 1


# --- renew ----------------------------------------------------------------------------------


def test_renew_extends_held_leases(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload(1), payload(2)]})
    held = queue.pop(QUEUE, ["t1", "t2"], 1).reserved
    before = now_ms()
    assert queue.renew(held, 60) == [True, True]
    assert all(redis_client.zscore(k.reserved, r.raw) >= before + 60_000 for r in held)


def test_renew_reports_lost_leases_and_does_not_revive_them(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload(1), payload(2)]})
    held, acked = queue.pop(QUEUE, ["t1", "t2"], 1).reserved
    queue.ack(acked)
    assert queue.renew([held, acked], LEASE_S) == [True, False]
    assert redis_client.zrange(k.reserved, 0, -1) == [held.raw.encode()]


def test_renew_reports_a_held_lease_as_held_when_its_deadline_does_not_move(queue):
    queue.push_groups({QUEUE: [payload()]})
    held = pop_one(queue)
    # One call computes one deadline, so the second entry meets an unchanged score.
    assert queue.renew([held, held], LEASE_S) == [True, True]


# --- notify ---------------------------------------------------------------------------------


def test_push_adds_a_wake_up_token_per_ready_job_and_one_per_later_call(queue, redis_client, k):
    queue.push_groups({QUEUE: ["a", "b", "c"]})
    assert redis_client.llen(k.notify) == 3
    queue.push_groups({}, {QUEUE: [(now_ms() + 60_000, "d"), (now_ms() + 60_000, "e")]})
    assert redis_client.llen(k.notify) == 4


def test_wake_up_tokens_are_capped(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload(), *["x"] * (NOTIFY_CAP + 4)]})
    queue.push_groups({QUEUE: ["more"]}, {QUEUE: [(now_ms() + 60_000, "later")]})
    reservation = pop_one(queue)
    queue.release(reservation, "released", 0)
    assert redis_client.llen(k.notify) == NOTIFY_CAP


def test_wait_returns_the_queue_a_push_from_another_thread_woke(redis_url, queue):
    waiter = RedisQueue(redis.Redis.from_url(redis_url, client_name="waiter"), queue.keys)
    pusher = threading.Thread(target=push_once_blocked, args=(queue, "waiter", payload()))
    pusher.start()
    started = time.monotonic()
    woken = waiter.wait(["other", QUEUE], timeout_s=20)
    elapsed = time.monotonic() - started
    pusher.join()
    waiter.client.close()
    assert woken == QUEUE
    assert elapsed < 10


def test_wait_returns_none_on_timeout(queue):
    started = time.monotonic()
    assert queue.wait([QUEUE, "other"], timeout_s=0.1) is None
    assert time.monotonic() - started < 5


def test_wait_and_pop_reserves_what_a_push_from_another_thread_woke_it_for(
    redis_url, queue, redis_client, k
):
    waiter = RedisQueue(redis.Redis.from_url(redis_url, client_name="waiter"), queue.keys)
    pushed = payload()
    pusher = threading.Thread(target=push_once_blocked, args=(queue, "waiter", pushed))
    pusher.start()
    popped = waiter.wait_and_pop(QUEUE, timeout_s=20, tokens=["t1", "t2"], lease_s=LEASE_S)
    pusher.join()
    waiter.client.close()
    (reservation,) = popped.reserved
    assert job_id(reservation.raw) == job_id(pushed)
    assert redis_client.zscore(k.reserved, reservation.raw) is not None


def test_wait_and_pop_reads_redis_clock_when_the_wait_ends(redis_url, queue, redis_client, k):
    """Sent before the wait, the pop must not stamp the job or date its lease with a time
    taken then: the push comes 0.3 s into the wait here."""
    waiter = RedisQueue(redis.Redis.from_url(redis_url, client_name="waiter"), queue.keys)
    pusher = threading.Thread(target=push_once_blocked, args=(queue, "waiter", payload(), 0.3))
    pusher.start()
    (reservation,) = waiter.wait_and_pop(QUEUE, 20, ["t1"], LEASE_S).reserved
    seconds, micros = redis_client.time()
    redis_now = seconds * 1000 + micros // 1000
    pusher.join()
    waiter.client.close()
    reserved_at = json.loads(reservation.raw)["reserved_at"]
    assert redis_now - 250 <= reserved_at <= redis_now
    deadline = redis_client.zscore(k.reserved, reservation.raw)
    assert deadline == reserved_at + LEASE_S * 1000


def test_wait_and_pop_on_timeout_reserves_nothing_and_keeps_delayed_jobs(queue, redis_client, k):
    later = payload(available_at=now_ms() + 60_000)
    queue.push_groups({}, {QUEUE: [(now_ms() + 60_000, later)]})
    popped = queue.wait_and_pop(QUEUE, 0.1, ["t1"], LEASE_S)
    assert popped.reserved == []
    assert popped.next_due_ms is not None
    assert redis_client.zcard(k.delayed) == 1


def push_once_blocked(queue: RedisQueue, client_name: str, raw: str, after_s: float = 0) -> None:
    """Push ``raw`` once the client named ``client_name`` blocks (and ``after_s`` more)."""

    def blocked() -> bool:
        clients = queue.client.client_list()
        return any(c["name"] == client_name and "b" in c["flags"] for c in clients)

    wait_until(blocked, timeout_s=5, message=f"{client_name} never blocked")
    time.sleep(after_s)
    queue.push_groups({QUEUE: [raw]})


def test_pop_that_empties_the_queue_deletes_its_wake_up_tokens(queue, redis_client, k):
    queue.push_groups({QUEUE: [payload(1), payload(2)]})
    pop_one(queue, "t1")
    assert redis_client.llen(k.notify) == 2
    pop_one(queue, "t2")
    assert redis_client.exists(k.notify) == 0


# --- poison ---------------------------------------------------------------------------------

POISON = pytest.mark.parametrize(
    "poison",
    [b"not json {", pickle.dumps({"job": "noop"}), b"[1, 2, 3]", b'{"not": "an envelope"}'],
    ids=["not-json", "pickle", "json-array", "json-object"],
)


def as_bytes(raw: str | bytes) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


@POISON
def test_poison_is_reserved_unchanged_and_the_job_behind_it_still_pops(
    queue, redis_client, k, poison
):
    redis_client.rpush(k.ready, poison)
    good = payload()
    queue.push_groups({QUEUE: [good]})
    (reserved,) = queue.pop(QUEUE, ["t1"], LEASE_S).reserved
    assert as_bytes(reserved.raw) == poison
    assert redis_client.zrange(k.reserved, 0, -1) == [poison]
    assert queue.ack(reserved) is True
    assert job_id(pop_one(queue, "t2").raw) == job_id(good)


@POISON
def test_expired_poison_is_migrated_back_unchanged(queue, redis_client, k, poison):
    redis_client.zadd(k.reserved, {poison: now_ms() - 1})
    queue.pop(QUEUE, [], LEASE_S)
    assert redis_client.lrange(k.ready, 0, -1) == [poison]
    assert redis_client.zcard(k.reserved) == 0


# --- sizes and clear ------------------------------------------------------------------------


def fill(queue: RedisQueue) -> None:
    """Two ready, one delayed and one reserved job on QUEUE, and one ready job elsewhere."""
    queue.push_groups(
        {QUEUE: [payload(1), payload(2), payload(3)], "other": [payload(4)]},
        {QUEUE: [(now_ms() + 60_000, payload(5))]},
    )
    pop_one(queue)


def test_sizes_count_ready_delayed_and_reserved(queue):
    fill(queue)
    assert queue.sizes(QUEUE) == {"ready": 2, "delayed": 1, "reserved": 1}
    assert (queue.size(QUEUE), queue.size("other"), queue.size("none")) == (4, 1, 0)


def test_clear_empties_one_queue_and_reports_how_many_jobs_it_dropped(queue, redis_client):
    fill(queue)
    assert queue.clear(QUEUE) == 4
    assert queue.clear(QUEUE) == 0
    other = queue.keys.queue("other")
    assert set(redis_client.keys("*")) == {other.ready.encode(), other.notify.encode()}
