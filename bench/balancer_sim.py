"""Balancer simulator: Skyline's auto-scaler against Horizon's, on the same load traces.

Run it from the repository root, with the project's virtualenv active:

    python bench/balancer_sim.py            # five traces of 3 simulated hours each
    python bench/balancer_sim.py --quick    # 1 simulated hour each
    python bench/balancer_sim.py --seed 7 --hours 6

Traces, generated from the seed (Poisson arrivals, lognormal service times with a
coefficient of variation of 1): steady (4 jobs/s of 1 s); burst (1 job/s of 0.8 s, and
every 20 minutes on average 150-400 jobs pushed at once); ramp (0.5 to 7.5 jobs/s of 1 s
and back); diurnal (two queues, 0.8 s and 0.3 s jobs, two "days" of rising and falling
traffic); skewed (5 jobs/s of 0.2 s beside a "reports" queue of 40 s jobs). Both
balancers see the same jobs and the same limits: min 1, max 10 processes, shift 1,
cooldown 3 s, one job per process at a time.

Time advances in 1 s ticks. At each tick the supervisor measures and scales; between
ticks each worker pops its queue's FIFO in continuous time, so a wait is exact: from a
job becoming available to a worker starting it. A new worker pops STARTUP_S after it was
started. Process-seconds count every live worker, also one finishing its job before it
stops.

Skyline: `balancer.autoscaler.plan` every tick, fed what the supervisor measures (ready
count, age of the oldest ready job, a decaying runtime average, pushes per second over
the last ARRIVAL_WINDOW_S, live, busy and stopping workers). Scaling down stops idle
workers first; a busy one finishes its job, then exits.

Horizon, reimplemented from its documented behaviour: it starts every pool at
max_processes split evenly; each cooldown it takes each queue's time to clear (ready x
average runtime, an average that restarts from nothing at every metrics snapshot,
SNAPSHOT_S) and shares max_processes in proportion (when no queue has a known runtime,
every non-empty queue asks for max), applies min_processes after the split, and moves
each pool by at most max_shift. A pool's count includes its terminating workers when it
decides, but scaling to a count starts that many active workers, so live processes can
pass max_processes. Scaling down terminates the oldest workers, busy or not; one still
running its job HARD_STOP_S later (the supervisor timeout; a job class may allow itself
longer) is killed, and its job comes back when its reservation expires.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field

from sim_traces import QueueTrace, Trace, traces  # beside this script

from balancer.autoscaler import QueueLoad, ScalerMemory, ScalingConfig, plan

MIN_PROCESSES = 1
MAX_PROCESSES = 10
MAX_SHIFT = 1
COOLDOWN_S = 3.0
STARTUP_S = 1.0
ARRIVAL_WINDOW_S = 10
RUNTIME_DECAY = 0.05  # weight of the newest job in Skyline's runtime average
SNAPSHOT_S = 300
HARD_STOP_S = 60.0
RETRY_AFTER_S = 90.0
HOURS = 3.0
QUICK_HOURS = 1.0
P95_SLACK = 1.10
RATIO_FLOOR_S = 0.01  # a pop takes about this long: waits below it are equal
GOAL_P95 = 0.7
GOAL_PROCESS_S = 1.05


# --- the simulated supervisor ---------------------------------------------------------


@dataclass
class Worker:
    queue: str
    born_s: float
    free_at: float  # pops its next job from then on
    job: tuple[float, float] | None = None  # (available at, service s) of its latest job
    exit_at: float = math.inf  # set when it is told to stop

    def busy(self, now: float) -> bool:
        return self.job is not None and self.free_at > now


@dataclass
class Queue:
    trace: QueueTrace
    next_job: int = 0
    ready: deque[tuple[float, float]] = field(default_factory=deque)
    retries: list[tuple[float, float]] = field(default_factory=list)
    pushes: deque[int] = field(default_factory=lambda: deque(maxlen=ARRIVAL_WINDOW_S))
    runtime_s: float = 0.0  # Skyline's decaying average
    snapshot_runtime_s: float = 0.0  # Horizon's average since the last snapshot
    snapshot_jobs: int = 0

    def push_until(self, end: float) -> None:
        due = [job for job in self.retries if job[0] < end]
        self.retries = [job for job in self.retries if job[0] >= end]
        jobs, start = self.trace.jobs, self.next_job
        while self.next_job < len(jobs) and jobs[self.next_job][0] < end:
            self.next_job += 1
        self.ready.extend(due + jobs[start : self.next_job])
        self.pushes.append(self.next_job - start)

    def completed(self, service_s: float) -> None:
        first = self.runtime_s == 0.0
        self.runtime_s += (1.0 if first else RUNTIME_DECAY) * (service_s - self.runtime_s)
        self.snapshot_jobs += 1
        self.snapshot_runtime_s += (service_s - self.snapshot_runtime_s) / self.snapshot_jobs


@dataclass
class Sim:
    queues: dict[str, Queue]
    workers: list[Worker] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    killed: int = 0
    scale_events: int = 0
    peak_live: int = 0

    def serve(self, start: float, end: float) -> None:
        for queue in self.queues.values():
            queue.push_until(end)
            active = self.active(queue.trace.name, start)
            while queue.ready and active:
                worker = min(active, key=lambda w: w.free_at)
                available, service_s = queue.ready[0]
                begin = max(worker.free_at, available)
                if begin >= end:
                    break
                queue.ready.popleft()
                self.finish(worker)
                self.waits.append(begin - available)
                worker.job, worker.free_at = (available, service_s), begin + service_s

    def finish(self, worker: Worker) -> None:
        if worker.job is not None:
            self.queues[worker.queue].completed(worker.job[1])
            worker.job = None

    def finish_jobs(self, now: float) -> None:
        for worker in self.workers:
            if worker.job is not None and worker.free_at <= now:
                self.finish(worker)

    def live(self, queue: str, now: float) -> list[Worker]:
        return [w for w in self.workers if w.queue == queue and w.exit_at > now]

    def active(self, queue: str, now: float) -> list[Worker]:
        return [w for w in self.live(queue, now) if w.exit_at == math.inf]

    def spawn(self, queue: str, count: int, now: float) -> None:
        self.workers += [Worker(queue, now, now + STARTUP_S) for _ in range(count)]

    def stop_gently(self, worker: Worker, now: float) -> None:
        worker.exit_at = worker.free_at if worker.busy(now) else now

    def stop_hard(self, worker: Worker, now: float) -> None:
        """Horizon: terminate, and kill the worker if its job outlasts the hard-stop timeout."""
        deadline = now + HARD_STOP_S
        if worker.job is None or worker.free_at <= deadline:
            self.stop_gently(worker, now)
            return
        self.killed += 1
        self.queues[worker.queue].retries.append((deadline + RETRY_AFTER_S, worker.job[1]))
        worker.job, worker.exit_at = None, deadline

    def record(self, changed: bool, now: float) -> None:
        self.scale_events += changed
        live = sum(w.exit_at > now for w in self.workers)
        self.peak_live = max(self.peak_live, live)

    def process_s(self, end: float) -> float:
        return sum(min(w.exit_at, end) - w.born_s for w in self.workers)

    def unstarted_waits(self, end: float) -> list[float]:
        jobs = [job for q in self.queues.values() for job in [*q.ready, *q.retries]]
        return [end - available for available, _ in jobs if available < end]


# --- the two balancers ----------------------------------------------------------------


class Skyline:
    def __init__(self, queues: tuple[str, ...]) -> None:
        self.config = ScalingConfig(
            queues,
            "auto",
            min_processes=MIN_PROCESSES,
            max_processes=MAX_PROCESSES,
            max_shift=MAX_SHIFT,
            cooldown_s=COOLDOWN_S,
        )
        self.memory = ScalerMemory()

    def step(self, sim: Sim, now: float) -> None:
        decision = plan(self.loads(sim, now), self.config, self.memory, now)
        self.memory = decision.memory
        changed = False
        for queue, count in decision.processes.items():
            active = sim.active(queue, now)
            sim.spawn(queue, count - len(active), now)
            idle_first = sorted(active, key=lambda w: (w.busy(now), -w.born_s))
            for worker in idle_first[: max(0, len(active) - count)]:
                sim.stop_gently(worker, now)
            changed |= count != len(active)
        sim.record(changed, now)

    @staticmethod
    def loads(sim: Sim, now: float) -> list[QueueLoad]:
        loads = []
        for name, queue in sim.queues.items():
            live, active = sim.live(name, now), sim.active(name, now)
            loads.append(
                QueueLoad(
                    queue=name,
                    ready=len(queue.ready),
                    oldest_wait_s=now - queue.ready[0][0] if queue.ready else 0.0,
                    runtime_s=queue.runtime_s,
                    arrival_per_s=sum(queue.pushes) / ARRIVAL_WINDOW_S,
                    processes=len(active),
                    busy=sum(w.busy(now) for w in active),
                    stopping=len(live) - len(active),
                )
            )
        return loads


class Horizon:
    def __init__(self, queues: tuple[str, ...]) -> None:
        self.queues = queues
        self.last_scaled_at: float | None = None

    def step(self, sim: Sim, now: float) -> None:
        if self.last_scaled_at is None:
            for queue in self.queues:
                sim.spawn(queue, MAX_PROCESSES // len(self.queues), now)
        elif now - self.last_scaled_at < COOLDOWN_S:
            sim.record(False, now)
            return
        self.last_scaled_at = now
        wanted = self.workers_per_queue(sim)
        changed = [self.scale_pool(sim, q, wanted[q], now) for q in sorted(wanted, key=wanted.get)]
        sim.record(any(changed), now)

    def workers_per_queue(self, sim: Sim) -> dict[str, float]:
        """Time to clear per queue, shared out of max_processes (strategy "time")."""
        size = {name: len(q.ready) for name, q in sim.queues.items()}
        clear_s = {name: size[name] * q.snapshot_runtime_s for name, q in sim.queues.items()}
        total_s = sum(clear_s.values())
        if total_s > 0:
            return {q: clear_s[q] / total_s * MAX_PROCESSES for q in self.queues}
        return {q: MAX_PROCESSES if size[q] else MIN_PROCESSES for q in self.queues}

    def scale_pool(self, sim: Sim, queue: str, workers: float, now: float) -> bool:
        counted = len(sim.live(queue, now))
        total = sum(len(sim.live(q, now)) for q in self.queues)
        desired = math.ceil(workers)
        if desired > counted:
            up = min(max(0, MAX_PROCESSES - total), MAX_SHIFT)
            ceiling = MAX_PROCESSES - (len(self.queues) - 1) * MIN_PROCESSES
            target = min(counted + up, ceiling, desired)
        elif desired < counted:
            target = max(counted - MAX_SHIFT, MIN_PROCESSES, desired)
        else:
            return False
        active = sorted(sim.active(queue, now), key=lambda w: w.born_s)
        sim.spawn(queue, target - len(active), now)
        for worker in active[: max(0, len(active) - target)]:
            sim.stop_hard(worker, now)
        return target != len(active)


# --- runs and the table -----------------------------------------------------------------


@dataclass
class Result:
    trace: str
    balancer: str
    p50_s: float
    p95_s: float
    max_s: float
    process_s: float
    scale_events: int
    peak_live: int
    killed: int


def simulate(trace: Trace, name: str) -> Result:
    queues = tuple(q.name for q in trace.queues)
    balancer = Skyline(queues) if name == "skyline" else Horizon(queues)
    sim = Sim({q.name: Queue(q) for q in trace.queues})
    for tick in range(trace.duration_s):
        now = float(tick)
        if tick % SNAPSHOT_S == 0:
            for queue in sim.queues.values():
                queue.snapshot_runtime_s, queue.snapshot_jobs = 0.0, 0
        sim.finish_jobs(now)
        balancer.step(sim, now)
        sim.serve(now, now + 1)
    end = float(trace.duration_s)
    waits = sorted(sim.waits + sim.unstarted_waits(end))
    p50, p95, worst = percentile(waits, 0.50), percentile(waits, 0.95), waits[-1]
    cost = sim.process_s(end)
    return Result(
        trace.name, name, p50, p95, worst, cost, sim.scale_events, sim.peak_live, sim.killed
    )


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ratio(skyline: float, horizon: float, floor: float = 0.0) -> float:
    return max(skyline, floor) / max(horizon, floor)


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_table(results: list[Result]) -> None:
    header = f"{'trace':<9}{'balancer':<9}{'p50 s':>8}{'p95 s':>8}{'max s':>8}"
    print(header + f"{'proc-s':>10}{'scales':>8}{'peak':>6}{'killed':>8}")
    for r in results:
        print(
            f"{r.trace:<9}{r.balancer:<9}{r.p50_s:>8.2f}{r.p95_s:>8.2f}{r.max_s:>8.1f}"
            f"{r.process_s:>10.0f}{r.scale_events:>8}{r.peak_live:>6}{r.killed:>8}"
        )


def judge(pairs: dict[str, tuple[Result, Result]]) -> list[str]:
    """Print Skyline's ratios to Horizon per trace and overall; return the goals missed."""
    p95s = {t: ratio(sky.p95_s, hor.p95_s, RATIO_FLOOR_S) for t, (sky, hor) in pairs.items()}
    costs = {t: ratio(sky.process_s, hor.process_s) for t, (sky, hor) in pairs.items()}
    print()
    for trace in pairs:
        print(f"{trace:<9}skyline / horizon: p95 {p95s[trace]:.2f}x, ", end="")
        print(f"process-seconds {costs[trace]:.2f}x")
    mean_p95, mean_cost = geometric_mean(list(p95s.values())), geometric_mean(list(costs.values()))
    print(f"geometric mean: p95 {mean_p95:.2f}x (goal <= {GOAL_P95}), ", end="")
    print(f"process-seconds {mean_cost:.2f}x (goal <= {GOAL_PROCESS_S})")
    missed = [f"p95 geometric mean {mean_p95:.2f}x"] if mean_p95 > GOAL_P95 else []
    if mean_cost > GOAL_PROCESS_S:
        missed.append(f"process-seconds geometric mean {mean_cost:.2f}x")
    for trace, (sky, _) in pairs.items():
        if p95s[trace] > P95_SLACK:
            missed.append(f"{trace}: skyline's p95 is {p95s[trace]:.2f}x horizon's")
        if sky.peak_live > MAX_PROCESSES:
            missed.append(f"{trace}: skyline ran {sky.peak_live} processes at once")
        if sky.killed:
            missed.append(f"{trace}: skyline killed {sky.killed} busy jobs")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="trace seed (1)")
    parser.add_argument("--hours", type=float, help=f"simulated hours per trace ({HOURS})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_HOURS} h per trace")
    args = parser.parse_args()
    hours = args.hours or (QUICK_HOURS if args.quick else HOURS)
    started = time.perf_counter()
    pairs = {
        t.name: (simulate(t, "skyline"), simulate(t, "horizon")) for t in traces(args.seed, hours)
    }
    print(f"{hours:g} simulated hours per trace, seed {args.seed}, ", end="")
    print(f"min {MIN_PROCESSES} / max {MAX_PROCESSES} processes, shift {MAX_SHIFT}, ", end="")
    print(f"cooldown {COOLDOWN_S:g} s\n")
    print_table([result for pair in pairs.values() for result in pair])
    missed = judge(pairs)
    for goal in missed:
        print(f"FLAG {goal}")
    for trace, (_, horizon) in pairs.items():
        if horizon.peak_live > MAX_PROCESSES:
            print(f"note {trace}: horizon ran {horizon.peak_live} processes at once")
    print(f"\n{time.perf_counter() - started:.1f} s")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
