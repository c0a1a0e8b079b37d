"""The Redis queue: Laravel's reliable protocol with leases.

Each operation is one Lua script or one pipeline. A reservation is the exact
payload string in the ``reserved`` sorted set, and that string carries the
worker's lease token, so ack, release and renew only succeed for the worker
that still holds the lease.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from core.keys import Keys
from core.payload import now_ms
from core.pipelines import Writes, call, execute, register

NOTIFY_CAP = 1000
MIGRATE_LIMIT = 1000
SCAN_CHUNK = 1000  # payloads per round trip when reading a whole queue
REDIS_CLOCK = ""  # as the pop script's now: read Redis's clock when the script runs


@dataclass(frozen=True)
class Reservation:
    """A reserved payload; ``raw`` stays bytes only when it is not UTF-8 (poison)."""

    queue: str
    raw: str | bytes


PushPart = tuple[  # ready payloads by queue, (available-at, payload) by queue, and writes
    dict[str, list[str]], dict[str, list[tuple[int, str]]], Writes | None
]


@dataclass(frozen=True)
class PopResult:
    reserved: list[Reservation]
    next_due_ms: int | None


class RedisQueue:
    """The queue operations of one Redis connection."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._push = register(client, "push")
        self._later = register(client, "later")
        self._pop = register(client, "pop")
        self._release = register(client, "release")
        self._hand_back = register(client, "hand_back")

    def push_groups(
        self,
        ready: dict[str, list[str]],
        later: dict[str, list[tuple[int, str]]] | None = None,
        also: Writes | None = None,
    ) -> None:
        """Push payloads onto queues in one round trip, a script call per queue.

        ``also`` adds writes (job records, metrics) that go first in the same round trip,
        so a worker can never settle a job before its push is recorded.
        """
        self.push_parts([(ready, later or {}, also)])

    def push_parts(self, parts: list[PushPart]) -> None:
        """Several pushes in one round trip, each after its own writes. Redis serves other
        clients between the commands of a pipeline, so workers can reserve the first part
        while it is still taking in the rest."""
        pipe = self.client.pipeline(transaction=False)
        for ready, later, also in parts:
            if also is not None:
                also(pipe)
            for queue, payloads in ready.items():
                k = self.keys.queue(queue)
                call(pipe, self._push, [k.ready, k.notify], [NOTIFY_CAP, *payloads])
            for queue, timed in later.items():
                k = self.keys.queue(queue)
                call(pipe, self._later, [k.delayed, k.notify], [NOTIFY_CAP, *_flatten(timed)])
        execute(pipe)

    def pop(self, queue: str, tokens: list[str], lease_s: float) -> PopResult:
        """Reserve up to ``len(tokens)`` jobs, each under its own lease token."""
        keys, args = self._pop_call(queue, tokens, lease_s)
        return self._popped(queue, self._pop(keys=keys, args=args))

    def ack_and_pop(
        self,
        acks: list[Reservation],
        queue: str,
        tokens: list[str],
        lease_s: float,
        also: Writes | None = None,
    ) -> tuple[PopResult, int]:
        """Ack finished jobs (and ``also`` write their records) and reserve the next ones,
        in one round trip.

        Returns the pop and how many acks found their lease already lost.
        """
        if not acks and also is None:
            return self.pop(queue, tokens, lease_s), 0
        pipe = self._acking(acks, also)
        keys, args = self._pop_call(queue, tokens, lease_s)
        call(pipe, self._pop, keys, args)
        *acked, reply = execute(pipe)[-len(acks) - 1 :]
        return self._popped(queue, reply), acked.count(0)

    def _acking(self, acks: list[Reservation], also: Writes | None) -> redis.client.Pipeline:
        pipe = self.client.pipeline(transaction=False)
        if also is not None:
            also(pipe)
        for reservation in acks:
            pipe.zrem(self._reserved(reservation), reservation.raw)
        return pipe

    def _pop_call(
        self, queue: str, tokens: list[str], lease_s: float, now: int | str | None = None
    ) -> tuple[list, list]:
        now = now_ms() if now is None else now
        args = [now, int(lease_s * 1000), MIGRATE_LIMIT, *tokens]
        return self.keys.queue(queue).as_list(), args

    def _popped(self, queue: str, reply: list) -> PopResult:
        next_due = int(reply[0])
        return PopResult(
            reserved=[Reservation(queue, _exact(raw)) for raw in reply[1:]],
            next_due_ms=None if next_due < 0 else next_due,
        )

    def wait(self, queues: list[str], timeout_s: float) -> str | None:
        """Block until a push wakes one of ``queues``; returns that queue's name."""
        notify = [self.keys.queue(q).notify for q in queues]
        woken = self.client.blpop(notify, timeout=max(timeout_s, 0.01))
        return self.keys.queue_name(_text(woken[0])) if woken else None

    def wait_and_pop(
        self, queue: str, timeout_s: float, tokens: list[str], lease_s: float
    ) -> PopResult:
        """Block until a push wakes ``queue`` (or ``timeout_s`` passes), then reserve up to
        ``len(tokens)`` jobs, in one round trip: Redis holds the pop queued behind the BLPOP on
        this connection and runs it the moment the wait ends, so it reads Redis's clock."""
        pipe = self.client.pipeline(transaction=False)
        pipe.blpop([self.keys.queue(queue).notify], timeout=max(timeout_s, 0.01))
        keys, args = self._pop_call(queue, tokens, lease_s, REDIS_CLOCK)
        call(pipe, self._pop, keys, args)
        return self._popped(queue, execute(pipe)[-1])

    def ack(self, reservation: Reservation, also: Writes | None = None) -> bool:
        if also is None:
            return bool(self.client.zrem(self._reserved(reservation), reservation.raw))
        return self.ack_many([reservation], also) == 0

    def ack_many(self, reservations: list[Reservation], also: Writes | None = None) -> int:
        """Ack in one round trip; returns how many leases were already lost."""
        replies = execute(self._acking(reservations, also))
        return replies[len(replies) - len(reservations) :].count(0)

    def release(
        self,
        reservation: Reservation,
        new_raw: str,
        available_at_ms: int,
        also: Writes | None = None,
    ) -> bool:
        k = self.keys.queue(reservation.queue)
        keys = [k.reserved, k.delayed, k.ready, k.notify]
        args = [reservation.raw, new_raw, available_at_ms, now_ms(), NOTIFY_CAP]
        if also is None:
            return bool(self._release(keys=keys, args=args))
        pipe = self.client.pipeline(transaction=False)
        also(pipe)
        call(pipe, self._release, keys, args)
        return bool(execute(pipe)[-1])

    def hand_back(self, reservations: list[Reservation]) -> int:
        """Return jobs reserved but never started to the head of their queue, in order, as
        if never popped; returns how many went back (a lost lease keeps its job away)."""
        k = self.keys.queue(reservations[0].queue)
        raws = [r.raw for r in reservations]
        return self._hand_back(keys=[k.reserved, k.ready, k.notify], args=[NOTIFY_CAP, *raws])

    def renew(self, reservations: list[Reservation], lease_s: float) -> list[bool]:
        """Extend leases still held; False where the lease was lost."""
        deadline = now_ms() + int(lease_s * 1000)
        pipe = self.client.pipeline(transaction=False)
        for r in reservations:
            pipe.zadd(self._reserved(r), {r.raw: deadline}, xx=True)
            pipe.zscore(self._reserved(r), r.raw)
        return [score is not None for score in pipe.execute()[1::2]]

    def size(self, queue: str) -> int:
        return sum(self.sizes(queue).values())

    def sizes(self, queue: str) -> dict[str, int]:
        k = self.keys.queue(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(k.ready).zcard(k.delayed).zcard(k.reserved)
        ready, delayed, reserved = pipe.execute()
        return {"ready": ready, "delayed": delayed, "reserved": reserved}

    def ready_heads(self, queues: list[str]) -> list[tuple[int, bytes | None]]:
        """Per queue: ready jobs and the oldest one's payload, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for queue in queues:
            ready = self.keys.queue(queue).ready
            pipe.llen(ready).lindex(ready, 0)
        replies = pipe.execute()
        return list(zip(replies[::2], replies[1::2], strict=True))

    def clear(self, queue: str) -> int:
        cleared = self.size(queue)
        self.client.delete(*self.keys.queue(queue).as_list())
        return cleared

    def waiting(self, queue: str) -> Iterator[str | bytes]:
        """Every payload waiting on ``queue`` (ready, then delayed), a chunk per round trip.
        Workers go on meanwhile: a payload reserved or released during the scan may be
        missed or seen twice."""
        k = self.keys.queue(queue)
        for read, key in ((self.client.lrange, k.ready), (self.client.zrange, k.delayed)):
            for start in itertools.count(0, SCAN_CHUNK):
                chunk = read(key, start, start + SCAN_CHUNK - 1)
                yield from (_exact(raw) for raw in chunk)
                if len(chunk) < SCAN_CHUNK:
                    break

    def remove(self, queue: str, raw: str | bytes) -> bool:
        """Take a waiting payload off ``queue``. False when it is not waiting any more (a
        worker reserved it): then it runs. One transaction, so a payload that falls due
        meanwhile cannot slip from the delayed set to the list between the two removals."""
        k = self.keys.queue(queue)
        pipe = self.client.pipeline(transaction=True)
        pipe.lrem(k.ready, 1, raw).zrem(k.delayed, raw)
        return any(pipe.execute())

    def _reserved(self, reservation: Reservation) -> str:
        return self.keys.queue(reservation.queue).reserved


def _flatten(timed: list[tuple[int, str]]) -> list[object]:
    return [part for pair in timed for part in pair]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _exact(value: bytes) -> str | bytes:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value
