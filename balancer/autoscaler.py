"""The auto-scaler: how many worker processes each queue of one supervisor should run.

A pure function of the measured load, the pool config, what it remembered last time and
the clock: no I/O, no clock reads, no randomness. The supervisor measures, calls `plan`
every tick with a monotonic `now`, and starts or stops processes to match.

`auto` in a few steps: the load by queue, what each queue needs (time to clear its
backlog plus what its arrival rate keeps busy), a split of max_processes when the needs
do not fit (every queue keeps min_processes inside it), max_shift per step, cooldown.

The caller stops idle processes first and reports the ones still finishing a job after
being told to stop (`QueueLoad.stopping`): that is what lets the plan promise never to
run more than max_processes at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import ceil, exp

from core.control import ALL_QUEUES

__all__ = ["Plan", "QueueLoad", "ScalerMemory", "ScalingConfig", "plan"]

BALANCES = ("off", "simple", "auto")
STRATEGIES = ("time", "size")
DEFAULT_RUNTIME_S = 1.0  # a queue that has not finished a job yet
DEFAULT_CLEAR_S = 5.0  # drain a backlog within this, for a queue without target_wait_s
SMOOTHING_S = 30.0  # time constant of the arrival-driven need: one noisy tick moves it little
HYSTERESIS = 0.1  # shrink only when the need plus this fraction still fits
EPSILON = 1e-9


@dataclass(frozen=True)
class QueueLoad:
    """One queue of one supervisor, measured by the supervisor each tick."""

    queue: str
    ready: int
    oldest_wait_s: float
    runtime_s: float
    arrival_per_s: float
    processes: int
    busy: int
    stopping: int = 0  # told to stop, still finishing a job: they count against max_processes


@dataclass(frozen=True)
class ScalingConfig:
    queues: tuple[str, ...]
    balance: str
    strategy: str = "time"
    processes: int = 1
    min_processes: int = 1
    max_processes: int = 10
    max_shift: int = 1
    cooldown_s: float = 3.0
    weights: Mapping[str, float] = field(default_factory=dict)
    target_wait_s: Mapping[str, float] = field(default_factory=dict)
    concurrency: int = 1

    def __post_init__(self) -> None:
        if not self.queues:
            raise ValueError("a supervisor needs at least one queue")
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}, not {self.balance!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if self.balance == "auto" and self.min_processes * len(self.queues) > self.max_processes:
            raise ValueError("min_processes for every queue must fit in max_processes")


@dataclass(frozen=True)
class ScalerMemory:
    """Carried from one call to the next by the caller; start with ScalerMemory()."""

    last_scaled_at: float | None = None
    measured_at: float | None = None
    serving: tuple[tuple[str, float], ...] = ()  # smoothed processes kept busy, per queue


@dataclass(frozen=True)
class Plan:
    processes: dict[str, int]
    memory: ScalerMemory


def plan(
    loads: Sequence[QueueLoad], config: ScalingConfig, memory: ScalerMemory, now: float
) -> Plan:
    """Desired live processes per queue (for balance "off": one pool, under the key "*")."""
    if config.balance == "off":
        return Plan({ALL_QUEUES: config.processes}, memory)
    if config.balance == "simple":
        return Plan(even_split(config.processes, config.queues), memory)
    by_queue = loads_by_queue(loads, config.queues)
    current = {queue: load.processes for queue, load in by_queue.items()}
    if cooling_down(memory, config, now):
        return Plan(current, memory)
    step = config.max_processes if memory.last_scaled_at is None else config.max_shift
    runtimes = runtimes_by_queue(by_queue, config.strategy)
    fresh = {q: serving_now(by_queue[q], runtimes[q], step, config) for q in by_queue}
    serving = smoothed(fresh, memory, now)
    wanted = {q: wanted_processes(by_queue[q], serving[q], runtimes[q], config) for q in serving}
    target = split(wanted, config)
    moved = shifted(target, by_queue, config, step)
    scaled_at = now if moved != current else memory.last_scaled_at
    return Plan(moved, ScalerMemory(scaled_at, now, tuple(serving.items())))


def even_split(total: int, queues: tuple[str, ...]) -> dict[str, int]:
    share, remainder = divmod(total, len(queues))
    return {queue: share + (i < remainder) for i, queue in enumerate(queues)}


def loads_by_queue(loads: Sequence[QueueLoad], queues: tuple[str, ...]) -> dict[str, QueueLoad]:
    """A queue the supervisor did not measure counts as empty with no processes."""
    measured = {load.queue: load for load in loads}
    return {q: measured.get(q) or QueueLoad(q, 0, 0.0, 0.0, 0.0, 0, 0) for q in queues}


def cooling_down(memory: ScalerMemory, config: ScalingConfig, now: float) -> bool:
    return memory.last_scaled_at is not None and now - memory.last_scaled_at < config.cooldown_s


def runtimes_by_queue(by_queue: dict[str, QueueLoad], strategy: str) -> dict[str, float]:
    """Per-job process-time by queue; "size" counts every job as the supervisor's average."""
    known = {q: load.runtime_s or DEFAULT_RUNTIME_S for q, load in by_queue.items()}
    if strategy == "time":
        return known
    average = sum(known.values()) / len(known)
    return dict.fromkeys(known, average)


def serving_now(load: QueueLoad, runtime_s: float, step: int, config: ScalingConfig) -> float:
    """Processes the arriving jobs keep busy (Little's law: arrival rate x runtime); without
    an arrival rate, the busy processes are the same measure read backwards. Clipped to
    what this step can reach: a higher reading (a burst of pushes, one rare long job) could
    not be acted on now, and would only linger in the average."""
    if not load.arrival_per_s:
        return float(load.busy)
    return min(load.arrival_per_s * runtime_s / config.concurrency, load.processes + step)


def smoothed(fresh: dict[str, float], memory: ScalerMemory, now: float) -> dict[str, float]:
    """A decaying average over time, so that one noisy measurement does not start a
    process; an idle queue's past load fades within a minute or two."""
    if memory.measured_at is None:
        return fresh
    keep = exp(-max(0.0, now - memory.measured_at) / SMOOTHING_S)
    before = dict(memory.serving)
    return {q: keep * before.get(q, value) + (1 - keep) * value for q, value in fresh.items()}


def wanted_processes(
    load: QueueLoad, serving: float, runtime_s: float, config: ScalingConfig
) -> int:
    """Enough to serve what arrives and to clear the backlog within the queue's target,
    but never more processes for a backlog than it holds jobs."""
    clear_s = config.target_wait_s.get(load.queue, DEFAULT_CLEAR_S)
    need = serving + load.ready * min(1.0, runtime_s / config.concurrency / clear_s)
    target_s = config.target_wait_s.get(load.queue)
    if target_s is not None and load.oldest_wait_s > target_s:
        need = max(need, load.processes + config.max_shift)
    return with_hysteresis(need, load.processes)


def with_hysteresis(need: float, current: int) -> int:
    """Grow as soon as the need passes the current count; shrink only past a margin."""
    grow_to = ceil(need - EPSILON)
    shrink_to = ceil(need * (1 + HYSTERESIS) - EPSILON)
    return max(grow_to, min(current, shrink_to))


def split(wanted: dict[str, int], config: ScalingConfig) -> dict[str, int]:
    """Every queue its min, then the rest of max_processes one by one, in proportion to
    weight x want (highest-averages), never past a queue's want; ties go to priority."""
    counts = dict.fromkeys(config.queues, config.min_processes)
    for _ in range(config.max_processes - sum(counts.values())):
        hungry = [q for q in config.queues if counts[q] < wanted[q]]
        if not hungry:
            break
        best = max(hungry, key=lambda q: config.weights.get(q, 1.0) * wanted[q] / (counts[q] + 1))
        counts[best] += 1
    return counts


def shifted(
    target: dict[str, int], by_queue: dict[str, QueueLoad], config: ScalingConfig, limit: int
) -> dict[str, int]:
    """Move toward the target by at most `limit` per queue (but straight up to min), never
    starting a process that would take the live total past max_processes."""
    current = {q: load.processes for q, load in by_queue.items()}
    moved = {q: min(current[q], max(target[q], current[q] - limit)) for q in config.queues}
    live = sum(load.processes + load.stopping for load in by_queue.values())
    headroom = config.max_processes - live + sum(freed(by_queue[q], moved[q]) for q in moved)
    for q in sorted(config.queues, key=lambda q: current[q] >= config.min_processes):
        step = max(limit, config.min_processes - current[q])
        grow = max(0, min(target[q] - moved[q], step, headroom))
        moved[q] += grow
        headroom -= grow
    return moved


def freed(load: QueueLoad, keep: int) -> int:
    """Slots that a shrink frees at once: the supervisor stops idle processes first, and a
    busy one stays live until its job ends."""
    return min(max(load.processes - keep, 0), load.processes - load.busy)
