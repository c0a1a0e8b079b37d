"""Heartbeats and commands: how masters, supervisors, the CLI and the dashboard meet in Redis.

A heartbeat is a hash with a TTL plus a score in a sorted set by last-seen time, so a
process that dies simply stops being listed. Commands are ``{command, options}`` lists
that a master or supervisor drains each tick.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from core.keys import Keys

HEARTBEAT_TTL_S = 15
# The pool name, in heartbeats, of a supervisor whose balance is "off": one pool, all queues.
ALL_QUEUES = "*"

log = logging.getLogger("skyline.control")


@dataclass(frozen=True)
class Heartbeat:
    """What a master or supervisor last said about itself."""

    name: str
    kind: str  # "master" | "supervisor"
    status: str  # "running" | "paused"
    last_seen: float
    details: dict[str, Any]


class ControlRepository:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def beat(self, kind: str, name: str, status: str, details: dict[str, Any]) -> None:
        now = time.time()
        key, index = self._keys(kind, name)
        record = {"name": name, "status": status, "last_seen": now, "details": details}
        pipe = self.client.pipeline(transaction=False)
        pipe.set(key, json.dumps(record, default=str), ex=HEARTBEAT_TTL_S)
        pipe.zadd(index, {name: now})
        pipe.zremrangebyscore(index, "-inf", now - HEARTBEAT_TTL_S)
        pipe.execute()

    def forget(self, kind: str, name: str) -> None:
        key, index = self._keys(kind, name)
        self.client.pipeline(transaction=False).delete(key).zrem(index, name).execute()

    def alive(self, kind: str) -> list[Heartbeat]:
        """Records refreshed within the TTL, by name."""
        index = self.keys.masters() if kind == "master" else self.keys.supervisors()
        names = self.client.zrangebyscore(index, time.time() - HEARTBEAT_TTL_S, "+inf")
        if not names:
            return []
        raws = self.client.mget([self._keys(kind, n.decode())[0] for n in names])
        beats = [beat for raw in raws if raw and (beat := _heartbeat(kind, raw))]
        return sorted(beats, key=lambda b: b.name)

    def send(self, target: str, command: str, **options: Any) -> None:
        self.client.rpush(self.keys.commands(target), json.dumps({"command": command, **options}))

    def receive(self, target: str) -> list[dict[str, Any]]:
        """Every command waiting for ``target``, oldest first; the list is emptied."""
        key = self.keys.commands(target)
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(key, 0, -1).delete(key)
        raws, _ = pipe.execute()
        commands = []
        for raw in raws:
            try:
                command = json.loads(raw)
            except ValueError:
                command = None
            if isinstance(command, dict) and isinstance(command.get("command"), str):
                commands.append(command)
            else:
                log.warning("ignored a malformed command for %s: %r", target, raw[:200])
        return commands

    def _keys(self, kind: str, name: str) -> tuple[str, str]:
        if kind == "master":
            return self.keys.master(name), self.keys.masters()
        return self.keys.supervisor(name), self.keys.supervisors()


def _heartbeat(kind: str, raw: bytes) -> Heartbeat | None:
    """A heartbeat that does not read (another version wrote it, or a hand) is skipped."""
    try:
        record = json.loads(raw)
        beat = Heartbeat(
            name=str(record["name"]),
            kind=kind,
            status=str(record["status"]),
            last_seen=float(record["last_seen"]),
            details=dict(record.get("details") or {}),
        )
    except (ValueError, TypeError, KeyError):
        log.warning("skipped an unreadable %s heartbeat: %.200r", kind, raw)
        return None
    return beat
