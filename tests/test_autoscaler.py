"""The auto-scaler's rules, as scenario tables, and its invariants over random inputs."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from balancer.autoscaler import Plan, QueueLoad, ScalerMemory, ScalingConfig, plan

NOW = 100.0
SETTLED = ScalerMemory(last_scaled_at=0.0)  # scaled long ago, no smoothed history
HAIR = 1e-9


def load(
    queue: str = "default",
    *,
    ready: int = 0,
    wait_s: float = 0.0,
    runtime_s: float = 1.0,
    arrival: float = 0.0,
    processes: int = 1,
    busy: int = 0,
    stopping: int = 0,
) -> QueueLoad:
    return QueueLoad(queue, ready, wait_s, runtime_s, arrival, processes, busy, stopping)


def auto(*queues: str, **options) -> ScalingConfig:
    return ScalingConfig(queues or ("default",), "auto", **options)


def counts(
    loads: list[QueueLoad],
    config: ScalingConfig,
    memory: ScalerMemory = SETTLED,
    now: float = NOW,
) -> dict[str, int]:
    return plan(loads, config, memory, now).processes


def run(
    loads: list[QueueLoad], config: ScalingConfig, ticks: int, memory: ScalerMemory = SETTLED
) -> list[dict[str, int]]:
    """Call plan once a second, feeding its answer back as the live processes."""
    history = []
    for tick in range(ticks):
        result = plan(loads, config, memory, NOW + tick)
        memory = result.memory
        loads = [replace(q, processes=result.processes[q.queue]) for q in loads]
        history.append(result.processes)
    return history


# --- off and simple -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "queues", "processes", "expected"),
    [
        ("off", ("a", "b"), 4, {"*": 4}),
        ("simple", ("a", "b"), 5, {"a": 3, "b": 2}),
        ("simple", ("a", "b", "c"), 6, {"a": 2, "b": 2, "c": 2}),
        ("simple", ("a", "b", "c"), 2, {"a": 1, "b": 1, "c": 0}),
        ("simple", ("a",), 3, {"a": 3}),
    ],
)
def test_off_and_simple_are_fixed_whatever_the_load(balance, queues, processes, expected):
    hot = [load(q, ready=1000, wait_s=600, processes=0) for q in queues]
    config = ScalingConfig(queues, balance, processes=processes)
    assert plan(hot, config, SETTLED, NOW) == Plan(expected, SETTLED)


@pytest.mark.parametrize(
    "options",
    [
        {"balance": "sometimes"},
        {"strategy": "mood"},
        {"min_processes": 4, "max_processes": 7},
        {"queues": ()},
    ],
)
def test_bad_config_is_refused(options):
    with pytest.raises(ValueError):
        ScalingConfig(**{"queues": ("a", "b"), "balance": "auto", **options})


# --- bounds: min inside the split, never past max -----------------------------------


@pytest.mark.parametrize(
    ("loads", "options", "expected"),
    [
        pytest.param(
            [load("a", ready=100), load("b", ready=100)],
            {},
            {"a": 5, "b": 5},
            id="two hot queues share max",
        ),
        pytest.param(
            [load("a", ready=100), load("b"), load("c")],
            {},
            {"a": 8, "b": 1, "c": 1},
            id="one hot queue takes what the idle ones leave",
        ),
        pytest.param(
            [load("a", ready=1000, runtime_s=10), load("b", ready=5)],
            {},
            {"a": 9, "b": 1},
            id="min inside the split: horizon gives 10 + 1",
        ),
        pytest.param(
            [load("a", ready=1000), load("b"), load("c")],
            {"min_processes": 2, "max_processes": 6},
            {"a": 2, "b": 2, "c": 2},
            id="min of every queue before any share",
        ),
        pytest.param(
            [load("a", ready=10), load("b", ready=15)],
            {},
            {"a": 2, "b": 3},
            id="needs that fit are met, not scaled up to max",
        ),
        pytest.param(
            [load("a", ready=300), load("b", ready=100)],
            {},
            {"a": 8, "b": 2},
            id="shares follow the needs",
        ),
    ],
)
def test_bounds(loads, options, expected):
    config = auto(*(q.queue for q in loads), max_shift=10, **options)
    assert counts(loads, config) == expected


def test_growth_never_takes_live_processes_past_max():
    """Shrinking a pool of busy workers frees nothing until their jobs end."""
    config = auto("a", "b", max_shift=10)
    busy_a = load("a", arrival=0.1, processes=9, busy=9)
    hot_b = load("b", ready=1000)
    assert counts([busy_a, hot_b], config) == {"a": 1, "b": 1}
    draining = load("a", arrival=0.1, processes=1, busy=1, stopping=8)
    assert counts([draining, hot_b], config) == {"a": 1, "b": 1}
    assert counts([load("a", arrival=0.1, processes=1, busy=1), hot_b], config) == {
        "a": 1,
        "b": 9,
    }


def test_idle_workers_make_room_at_once():
    config = auto("a", "b", max_shift=10)
    idle_a = load("a", processes=9)
    assert counts([idle_a, load("b", ready=1000)], config) == {"a": 1, "b": 9}


# --- max shift ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "options", "expected"),
    [
        pytest.param(load(ready=100, processes=2), {"max_shift": 1}, 3, id="grow by 1"),
        pytest.param(load(ready=100, processes=2), {"max_shift": 3}, 5, id="grow by 3"),
        pytest.param(load(processes=8), {"max_shift": 1}, 7, id="shrink by 1"),
        pytest.param(load(processes=8), {"max_shift": 2}, 6, id="shrink by 2"),
        pytest.param(load(processes=8), {"max_shift": 10}, 1, id="shrink to min"),
        pytest.param(load(processes=0), {"min_processes": 2}, 2, id="back to min at once"),
        pytest.param(
            load(ready=100, processes=0), {"min_processes": 3}, 3, id="below min, then shift"
        ),
    ],
)
def test_max_shift(queue, options, expected):
    assert counts([queue], auto(**options)) == {"default": expected}


# --- cooldown -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "scales"),
    [
        (53.0 - HAIR, False),
        (53.0, True),
        (53.0 + HAIR, True),
    ],
)
def test_cooldown_boundaries(now, scales):
    memory = ScalerMemory(last_scaled_at=50.0, measured_at=50.0)
    result = plan([load(ready=100, processes=2)], auto(cooldown_s=3.0), memory, now)
    if scales:
        assert result.processes == {"default": 3}
        assert result.memory.last_scaled_at == now
    else:
        assert result == Plan({"default": 2}, memory)


def test_a_step_that_changes_nothing_does_not_restart_the_cooldown():
    memory = ScalerMemory(last_scaled_at=50.0)
    result = plan([load(processes=1)], auto(), memory, 60.0)
    assert result.processes == {"default": 1}
    assert result.memory.last_scaled_at == 50.0


# --- strategies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "runtimes", "expected"),
    [
        pytest.param("time", (2.0, 0.5), {"a": 8, "b": 2}, id="time: longer jobs, more"),
        pytest.param("size", (2.0, 0.5), {"a": 5, "b": 5}, id="size: same count, same share"),
        pytest.param("time", (0.0, 0.0), {"a": 5, "b": 5}, id="time, runtimes unknown"),
    ],
)
def test_strategies(strategy, runtimes, expected):
    loads = [load(q, ready=100, runtime_s=r) for q, r in zip("ab", runtimes, strict=True)]
    assert counts(loads, auto("a", "b", strategy=strategy, max_shift=10)) == expected


def test_unknown_runtime_does_not_ask_for_max():
    """Horizon reads a runtime reset by a snapshot as "every non-empty queue wants max"."""
    assert counts([load(ready=3, runtime_s=0.0)], auto(max_shift=10)) == {"default": 1}


# --- empty queues and one hot queue -------------------------------------------------


def test_empty_queues_stay_at_min():
    config = auto("a", "b", "c")
    result = plan([load(q) for q in "abc"], config, SETTLED, NOW)
    assert result.processes == {"a": 1, "b": 1, "c": 1}
    assert result.memory.last_scaled_at == SETTLED.last_scaled_at


def test_a_queue_that_was_not_measured_counts_as_empty():
    assert counts([load("a", processes=2, busy=2)], auto("a", "b")) == {"a": 2, "b": 1}


def test_an_idle_queue_shrinks_step_by_step_to_min():
    steps = run([load(processes=7)], auto(cooldown_s=3.0), ticks=30)
    sizes = [s["default"] for s in steps]
    assert sizes[::3][:7] == [6, 5, 4, 3, 2, 1, 1]
    assert sizes[-1] == 1


def test_an_idle_queue_that_was_busy_fades_to_min_without_growing():
    busy_before = ScalerMemory(last_scaled_at=0.0, measured_at=NOW - 1, serving=(("default", 6.0),))
    sizes = [s["default"] for s in run([load(processes=6)], auto(), 90, memory=busy_before)]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 6
    assert sizes[-1] == 1


def test_one_hot_queue_grows_while_the_others_stay_at_min():
    loads = [load("a"), load("b", ready=500), load("c")]
    steps = run(loads, auto("a", "b", "c", cooldown_s=3.0), ticks=30)
    assert [s["b"] for s in steps[::3]] == [2, 3, 4, 5, 6, 7, 8, 8, 8, 8]
    assert all(s["a"] == s["c"] == 1 for s in steps)


# --- start-up -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        pytest.param([load("a", processes=0), load("b", processes=0)], {"a": 1, "b": 1}, id="idle"),
        pytest.param(
            [load("a", arrival=3, processes=0), load("b", processes=0)],
            {"a": 3, "b": 1},
            id="arrivals",
        ),
        pytest.param(
            [load("a", ready=20, processes=0), load("b", processes=0)],
            {"a": 4, "b": 1},
            id="backlog",
        ),
        pytest.param(
            [load("a", ready=1000, processes=0), load("b", processes=0)],
            {"a": 9, "b": 1},
            id="flood",
        ),
    ],
)
def test_start_up_goes_to_what_the_load_needs(loads, expected):
    assert counts(loads, auto("a", "b"), memory=ScalerMemory()) == expected


# --- hysteresis ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrival", "expected"),
    [(5.2, 6), (5.0, 5), (4.6, 5), (4.0, 5), (3.7, 5), (3.6, 4)],
)
def test_hysteresis_grows_at_once_and_shrinks_past_a_margin(arrival, expected):
    queue = load(arrival=arrival, processes=5, busy=3)
    assert counts([queue], auto(max_shift=10)) == {"default": expected}


def test_small_wiggles_in_a_steady_load_change_nothing():
    config = auto(cooldown_s=3.0)
    memory = SETTLED
    for tick in range(200):
        wiggle = load(arrival=4.3 if tick % 2 else 4.9, processes=5, busy=4)
        memory = plan([wiggle], config, memory, NOW + tick).memory
        assert plan([wiggle], config, memory, NOW + tick).processes == {"default": 5}
    assert memory.last_scaled_at == SETTLED.last_scaled_at


def test_one_noisy_reading_does_not_start_a_process():
    config = auto(cooldown_s=3.0)
    calm = plan([load(arrival=4.0, processes=5, busy=4)], config, SETTLED, NOW).memory
    spike = load(arrival=9.0, processes=5, busy=4)
    assert counts([spike], config, memory=calm, now=NOW + 1) == {"default": 5}


def test_an_idle_system_does_not_oscillate():
    steps = run([load("a"), load("b")], auto("a", "b"), ticks=100)
    assert all(s == {"a": 1, "b": 1} for s in steps)


def test_a_contended_split_settles():
    loads = [load("a", ready=200, busy=1), load("b", ready=100, busy=1)]
    steps = run(loads, auto("a", "b", cooldown_s=3.0), ticks=60)
    assert all(s == {"a": 7, "b": 3} for s in steps[-20:])


# --- arrival rate (Little's law) ----------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "options", "expected"),
    [
        pytest.param(load(arrival=10, processes=3, busy=3), {}, 4, id="grows before a backlog"),
        pytest.param(load(arrival=10, processes=3, busy=3), {"max_shift": 3}, 6, id="by shift"),
        pytest.param(load(arrival=0.5, runtime_s=8, processes=2, busy=2), {}, 3, id="slow jobs"),
        pytest.param(
            load(arrival=10, processes=1, busy=1), {"concurrency": 4, "max_shift": 5}, 3, id="x4"
        ),
        pytest.param(load(processes=4, busy=4), {}, 4, id="no rate: busy processes stay"),
        pytest.param(load(arrival=2, processes=6, busy=2), {}, 5, id="fewer arrivals shrink"),
    ],
)
def test_arrival_rate_scales_ahead_of_the_backlog(queue, options, expected):
    assert counts([queue], auto(**options)) == {"default": expected}


def test_a_reading_beyond_one_step_counts_as_one_step():
    """A burst of pushes (or one rare long job) could not be acted on beyond one step."""
    config = auto(cooldown_s=3.0)
    calm = load(arrival=4.0, processes=5, busy=4)
    memory = plan([calm], config, SETTLED, NOW).memory
    spike = plan([load(arrival=100.0, processes=5, busy=4)], config, memory, NOW + 1)
    assert spike.processes == {"default": 5}
    assert counts([calm], config, memory=spike.memory, now=NOW + 4) == {"default": 5}


# --- target wait --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target_s", "wait_s", "expected"),
    [
        (None, 30.0, 3),
        (2.0, 1.9, 3),
        (2.0, 2.0, 3),
        (2.0, 2.0 + HAIR, 4),
        (2.0, 30.0, 4),
    ],
)
def test_a_queue_past_its_target_wait_grows(target_s, wait_s, expected):
    queue = load(ready=1, wait_s=wait_s, runtime_s=0.1, processes=3, busy=2)
    targets = {} if target_s is None else {"default": target_s}
    assert counts([queue], auto(target_wait_s=targets)) == {"default": expected}


@pytest.mark.parametrize(("target_s", "expected"), [(None, 8), (20.0, 2), (2.0, 10)])
def test_the_target_wait_sets_how_fast_a_backlog_clears(target_s, expected):
    targets = {} if target_s is None else {"default": target_s}
    config = auto(target_wait_s=targets, max_shift=10)
    assert counts([load(ready=40)], config) == {"default": expected}


# --- weights and priority -----------------------------------------------------------


@pytest.mark.parametrize(
    ("loads", "weights", "expected"),
    [
        pytest.param([100, 100], {}, {"a": 5, "b": 5}, id="equal"),
        pytest.param([100, 100], {"a": 3}, {"a": 8, "b": 2}, id="a weighs 3"),
        pytest.param([100, 100], {"b": 3}, {"a": 2, "b": 8}, id="b weighs 3"),
        pytest.param([10, 15], {"a": 10}, {"a": 2, "b": 3}, id="no contention, no effect"),
        pytest.param([100, 100, 100], {}, {"a": 4, "b": 3, "c": 3}, id="ties to priority"),
    ],
)
def test_weights_scale_a_share(loads, weights, expected):
    queues = "abc"[: len(loads)]
    hot = [load(q, ready=ready) for q, ready in zip(queues, loads, strict=True)]
    assert counts(hot, auto(*queues, weights=weights, max_shift=10)) == expected


# --- invariants over random inputs --------------------------------------------------


def random_case(rng: random.Random) -> tuple[list[QueueLoad], ScalingConfig, ScalerMemory, float]:
    queues = tuple(f"q{i}" for i in range(rng.randint(1, 4)))
    min_processes = rng.randint(0, 2)
    max_processes = rng.randint(max(1, min_processes * len(queues)), 12)
    config = ScalingConfig(
        queues,
        "auto",
        strategy=rng.choice(["time", "size"]),
        min_processes=min_processes,
        max_processes=max_processes,
        max_shift=rng.randint(1, 3),
        cooldown_s=rng.choice([0.0, 1.0, 3.0, 5.0]),
        weights={q: rng.uniform(0.1, 4) for q in queues if rng.random() < 0.3},
        target_wait_s={q: rng.uniform(0.5, 30) for q in queues if rng.random() < 0.3},
        concurrency=rng.choice([1, 1, 4]),
    )
    room = max_processes
    loads = []
    for q in queues:
        processes = rng.randint(0, room)
        stopping = rng.randint(0, room - processes)
        room -= processes + stopping
        loads.append(
            QueueLoad(
                q,
                ready=rng.choice([0, 0, rng.randint(1, 20), rng.randint(0, 2000)]),
                oldest_wait_s=rng.uniform(0, 60),
                runtime_s=rng.choice([0.0, rng.uniform(0.01, 120)]),
                arrival_per_s=rng.choice([0.0, rng.uniform(0, 50)]),
                processes=processes,
                busy=rng.randint(0, processes),
                stopping=stopping,
            )
        )
    now = rng.uniform(0, 1000)
    memory = rng.choice(
        [
            ScalerMemory(),
            ScalerMemory(
                last_scaled_at=now - rng.uniform(0, 2 * config.cooldown_s + 1),
                measured_at=now - rng.uniform(0, 10),
                serving=tuple((q, rng.uniform(0, 20)) for q in queues),
            ),
        ]
    )
    return loads, config, memory, now


def live_after(loads: list[QueueLoad], processes: dict[str, int]) -> int:
    """Live processes once the plan is applied: idle ones stop first, busy ones drain."""
    return sum(processes[q.queue] + q.stopping + max(0, q.busy - processes[q.queue]) for q in loads)


def test_invariants_hold_for_random_inputs():
    rng = random.Random(20240611)
    for _ in range(5000):
        loads, config, memory, now = random_case(rng)
        result = plan(loads, config, memory, now)
        assert result == plan(loads, config, memory, now)
        current = {q.queue: q.processes for q in loads}
        if memory.last_scaled_at is not None and now - memory.last_scaled_at < config.cooldown_s:
            assert result == Plan(current, memory)
            continue
        assert sum(result.processes.values()) <= config.max_processes
        assert live_after(loads, result.processes) <= config.max_processes
        for q, count in result.processes.items():
            room_left = live_after(loads, result.processes) == config.max_processes
            assert count >= config.min_processes or room_left
            if memory.last_scaled_at is not None:
                assert count - current[q] <= max(
                    config.max_shift, config.min_processes - current[q]
                )
                assert current[q] - count <= config.max_shift
        hash(result.memory)
