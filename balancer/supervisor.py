"""A supervisor: the process pools of one ``[environments.ENV.NAME]`` table, kept sized.

``loop()`` is one tick, read as steps: obey commands, measure the queues, let the
auto-scaler plan, resize the pools, watch the workers, write the heartbeat.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from balancer.autoscaler import Plan, QueueLoad, ScalerMemory, ScalingConfig, plan
from balancer.config import SupervisorConfig, worker_args
from balancer.pool import PoolStats, ProcessPool
from core.control import ALL_QUEUES, ControlRepository
from core.queue import RedisQueue

log = logging.getLogger("skyline.supervisor")

SMOOTHING = 0.3  # weight of the newest sample in the decaying averages


@dataclass
class QueueMeter:
    """Decaying averages that survive snapshots (Horizon's reset at each one)."""

    runtime_s: float = 0.0
    arrival_per_s: float = 0.0
    last_ready: int | None = None

    def update(self, ready: int, stats: PoolStats, elapsed_s: float) -> None:
        if stats.completed:
            sample = stats.busy_seconds / stats.completed
            self.runtime_s = sample if not self.runtime_s else _mix(self.runtime_s, sample)
        if self.last_ready is not None and elapsed_s > 0:
            arrived = max(ready - self.last_ready + stats.completed, 0)
            self.arrival_per_s = _mix(self.arrival_per_s, arrived / elapsed_s)
        self.last_ready = ready


def _mix(old: float, new: float) -> float:
    return (1 - SMOOTHING) * old + SMOOTHING * new


@dataclass
class Supervisor:
    name: str
    config: SupervisorConfig
    queue: RedisQueue
    control: ControlRepository
    env: dict[str, str]
    pools: dict[str, ProcessPool] = field(default_factory=dict)
    meters: dict[str, QueueMeter] = field(default_factory=dict)
    memory: ScalerMemory = field(default_factory=ScalerMemory)
    paused: bool = False
    _last_tick: float | None = None

    def __post_init__(self) -> None:
        grace = float(self.config.timeout or 60) + 5
        groups = [ALL_QUEUES] if self.config.balance == "off" else list(self.config.queues)
        for group in groups:
            queues = list(self.config.queues) if group == ALL_QUEUES else [group]
            args = worker_args(self.config, queues)
            nice = self.config.nice or 0
            self.pools[group] = ProcessPool(",".join(queues), args, self.env, grace, nice)
            self.meters.update({q: QueueMeter() for q in queues})

    def loop(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.obey(self.control.receive(self.name))
        loads = self.measure(now)
        if not self.paused:
            self.scale(loads, now)
        for pool in self.pools.values():
            pool.monitor(now)
        self.heartbeat()

    def obey(self, commands: list[dict]) -> None:
        for command in commands:
            if command["command"] == "pause":
                self.pause()
            elif command["command"] == "continue":
                self.resume()
            else:
                log.warning("supervisor %s ignored unknown command %r", self.name, command)

    def pause(self) -> None:
        self.paused = True
        for pool in self.pools.values():
            pool.pause()

    def resume(self) -> None:
        self.paused = False
        for pool in self.pools.values():
            pool.resume()

    def measure(self, now: float) -> list[QueueLoad]:
        """Queue sizes and the oldest ready job's age, in one round trip."""
        elapsed = 0.0 if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        queues = list(self.config.queues)
        sizes = self.queue.ready_heads(queues)
        stats = {group: pool.read_status(now) for group, pool in self.pools.items()}
        loads = []
        for queue_name, (ready, head) in zip(queues, sizes, strict=True):
            group = ALL_QUEUES if ALL_QUEUES in self.pools else queue_name
            meter = self.meters[queue_name]
            share = stats[group] if group == queue_name else _share(stats[group], len(queues))
            meter.update(ready, share, elapsed)
            pool = self.pools[group]
            loads.append(
                QueueLoad(
                    queue=queue_name,
                    ready=ready,
                    oldest_wait_s=_age_s(head),
                    runtime_s=meter.runtime_s,
                    arrival_per_s=meter.arrival_per_s,
                    processes=len(pool.live),
                    busy=pool.busy,
                    stopping=len(pool.workers) - len(pool.live),
                )
            )
        return loads

    def scale(self, loads: list[QueueLoad], now: float) -> None:
        decision: Plan = plan(loads, scaling_config(self.config), self.memory, now)
        self.memory = decision.memory
        for group, count in decision.processes.items():
            if group in self.pools:
                self.pools[group].scale(count, now)

    def heartbeat(self) -> None:
        details = {
            "queues": list(self.config.queues),
            "balance": self.config.balance,
            "pools": {g: {"processes": len(p.live), "busy": p.busy} for g, p in self.pools.items()},
            "processes": sum(len(p.live) for p in self.pools.values()),
            "options": self.config.model_dump(mode="json"),
        }
        self.control.beat("supervisor", self.name, "paused" if self.paused else "running", details)

    def terminate(self, now: float) -> None:
        for pool in self.pools.values():
            pool.terminate(now)

    def processes(self) -> int:
        """Worker processes still alive, including those finishing before they stop."""
        return sum(len(p.workers) for p in self.pools.values())


def scaling_config(config: SupervisorConfig) -> ScalingConfig:
    return ScalingConfig(
        queues=tuple(config.queues),
        balance=config.balance,
        strategy=config.auto_scaling_strategy,
        processes=config.processes,
        min_processes=config.min_processes,
        max_processes=config.max_processes,
        max_shift=config.balance_max_shift,
        cooldown_s=config.balance_cooldown,
        weights=dict(config.weights or {}),
        target_wait_s=dict(config.target_wait or {}),
        concurrency=config.concurrency,
    )


def _share(stats: PoolStats, parts: int) -> PoolStats:
    return PoolStats(stats.completed // parts, stats.busy_seconds / parts)


def _age_s(head: bytes | None) -> float:
    """Seconds the oldest ready job has waited since it became available."""
    if not head:
        return 0.0
    try:
        available_at = json.loads(head).get("available_at", 0)
    except (ValueError, AttributeError):
        return 0.0
    return max(time.time() - available_at / 1000, 0.0) if available_at else 0.0
