"""Load traces for the balancer simulator, generated from a seed.

Poisson arrivals, lognormal service times with a coefficient of variation of 1; see
bench/balancer_sim.py for what each trace models.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class QueueTrace:
    name: str
    jobs: list[tuple[float, float]]  # (pushed at, service seconds), in push order


@dataclass
class Trace:
    name: str
    duration_s: int
    queues: list[QueueTrace]


Rate = Callable[[float], float]


def poisson_times(rng: random.Random, rate: Rate, peak: float, duration_s: int) -> list[float]:
    """A Poisson process whose rate varies with time (thinning under the peak rate)."""
    times, t = [], 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration_s:
            return times
        if rng.random() * peak < rate(t):
            times.append(t)


def queue_trace(
    rng: random.Random,
    name: str,
    rate: Rate,
    peak: float,
    mean_s: float,
    duration_s: int,
    bursts: Sequence[tuple[float, int]] = (),
) -> QueueTrace:
    times = poisson_times(rng, rate, peak, duration_s)
    times += [at for at, size in bursts for _ in range(size)]
    sigma = math.sqrt(math.log(2.0))  # lognormal with a coefficient of variation of 1
    mu = math.log(mean_s) - sigma**2 / 2
    return QueueTrace(name, [(t, rng.lognormvariate(mu, sigma)) for t in sorted(times)])


def steady(rng: random.Random, d: int) -> list[QueueTrace]:
    return [queue_trace(rng, "default", lambda t: 4.0, 4.0, 1.0, d)]


def burst(rng: random.Random, d: int) -> list[QueueTrace]:
    bursts = [(rng.uniform(0, d - 600), rng.randint(150, 400)) for _ in range(d // 1200)]
    return [queue_trace(rng, "default", lambda t: 1.0, 1.0, 0.8, d, bursts)]


def ramp(rng: random.Random, d: int) -> list[QueueTrace]:
    def rate(t: float) -> float:
        return 0.5 + 7.0 * (1 - abs(2 * t / d - 1))

    return [queue_trace(rng, "default", rate, 7.5, 1.0, d)]


def diurnal(rng: random.Random, d: int) -> list[QueueTrace]:
    def day(peak: float) -> Rate:
        return lambda t: peak * (0.55 - 0.45 * math.cos(4 * math.pi * t / d))

    return [
        queue_trace(rng, "default", day(6.0), 6.0, 0.8, d),
        queue_trace(rng, "emails", day(5.0), 5.0, 0.3, d),
    ]


def skewed(rng: random.Random, d: int) -> list[QueueTrace]:
    return [
        queue_trace(rng, "fast", lambda t: 5.0, 5.0, 0.2, d),
        queue_trace(rng, "reports", lambda t: 0.08, 0.08, 40.0, d),
    ]


SHAPES = {"steady": steady, "burst": burst, "ramp": ramp, "diurnal": diurnal, "skewed": skewed}


def traces(seed: int, hours: float) -> list[Trace]:
    duration_s = int(hours * 3600)
    return [
        Trace(name, duration_s, shape(random.Random(f"{seed}:{name}"), duration_s))
        for name, shape in SHAPES.items()
    ]
