"""A push back to back and after an idle pause: where the time of a pickup on an idle system goes.

Run it from the repository root, with the project's virtualenv active:

    python bench/cold_push.py                          # 300 pushes each way, 20 ms idle
    python bench/cold_push.py --samples 100 --idle-ms 5
    python bench/cold_push.py --cpus 0,0               # Redis and this script on CPU 0

``bench/peers.py`` times the pickup of a job pushed onto an idle system, and there Skyline
takes about twice as long as a bare redis-py RPUSH and BLPOP. This script shows why on the
producer's side, with no workers running: it times the floor's redis-py RPUSH and Skyline's
``dispatch()`` of a no-op job, with job records and metrics on (the default) and off
(``[records] enabled = false``), each pushed back to back and then each after ``--idle-ms``
of sleep, as the pickup benchmark waits between its pushes. For every push it reports:

- before it sends: from the call to the moment redis-py hands the command to the socket
  (stamped by wrapping redis-py's ``send_packed_command`` in this process);
- the whole call, until the reply is read;
- in Redis: the run time of the commands the push sent, each command's median from Redis's
  SLOWLOG (set to log every command for the measurement), summed; a script's own commands
  are inside its time.

All run on a private redis-server on a free loopback port, stopped at the end. ``--cpus``
pins that Redis and this script to the CPUs it names, so that a round trip crosses between
two CPUs or stays on one; by default the scheduler places them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import redis
from redis.connection import AbstractConnection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.harness import open_bench, start_redis
from bench.recording_cost import without_recording
from core.pipelines import lua_source

WARM_UP = 100
SCRIPT_CLIENT = b"?:0"  # SLOWLOG's client address for the commands a Lua script runs
FLOOR_KEY = "bench:floor"


@dataclass
class Pushes:
    """What one push of a kind took, in microseconds: the medians of ``samples`` pushes."""

    label: str
    before_send_us: float
    whole_us: float
    redis_us: float  # the median run time of each command a push sent, summed
    commands: str  # what those were, per push, scripts by file: "push.lua x1, SADD x1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="pushes each way (300)")
    parser.add_argument("--idle-ms", type=float, default=20.0, help="the idle pause (20)")
    parser.add_argument(
        "--cpus", type=cpu_pair, help="Redis's CPU and this script's, such as 0,1 (unpinned)"
    )
    return parser.parse_args()


def cpu_pair(text: str) -> tuple[int, int]:
    """``--cpus``: the CPU for Redis, then the one for this script."""
    try:
        redis_cpu, script_cpu = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"give two CPU numbers, Redis's then this script's, such as 0,1: not {text!r}"
        ) from None
    usable = sorted(os.sched_getaffinity(0))
    for cpu in (redis_cpu, script_cpu):
        if cpu not in usable:
            raise argparse.ArgumentTypeError(
                f"CPU {cpu} is not one this process may run on: {usable}"
            )
    return redis_cpu, script_cpu


def pin(redis_pid: int, script_pid: int, cpus: tuple[int, int]) -> str:
    """Pin Redis and the script each to one CPU; says where, for the output's first line."""
    redis_cpu, script_cpu = cpus
    os.sched_setaffinity(redis_pid, {redis_cpu})
    os.sched_setaffinity(script_pid, {script_cpu})
    return f"Redis on CPU {redis_cpu}, this script on CPU {script_cpu}"


@contextmanager
def stamping_sends() -> Iterator[list[float]]:
    """The moments redis-py hands commands to a socket in this process, while inside."""
    stamps: list[float] = []
    original = AbstractConnection.send_packed_command

    def send(connection: AbstractConnection, *args: object, **kwargs: object) -> None:
        stamps.append(time.perf_counter())
        original(connection, *args, **kwargs)

    AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
    try:
        yield stamps
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


@contextmanager
def every_command_logged(client: redis.Redis, samples: int) -> Iterator[None]:
    """SLOWLOG keeps every command while inside; Redis's own settings come back after."""
    saved = client.config_get("slowlog-*")
    client.config_set("slowlog-log-slower-than", 0)
    client.config_set("slowlog-max-len", samples * 100)
    try:
        yield
    finally:
        client.config_set("slowlog-log-slower-than", saved["slowlog-log-slower-than"])
        client.config_set("slowlog-max-len", saved["slowlog-max-len"])


def sent_by_clients(entries: list[dict]) -> list[dict]:
    """SLOWLOG entries of the commands clients sent, not those their scripts ran, nor the
    SLOWLOG and CONFIG commands of the measurement itself."""
    ours = (b"SLOWLOG", b"CONFIG")
    return [
        e
        for e in entries
        if e["client_address"] != SCRIPT_CLIENT and e["command"].split()[0].upper() not in ours
    ]


def script_names() -> dict[str, str]:
    """SHA1 -> file name, of Skyline's scripts in core/lua."""
    names = (path.stem for path in resources.files("core").joinpath("lua").iterdir())
    return {hashlib.sha1(lua_source(name).encode()).hexdigest(): f"{name}.lua" for name in names}


def command_name(command: bytes, scripts: dict[str, str]) -> str:
    """A command's name; for an EVALSHA, the script's."""
    words = command.decode().split()
    name = words[0].upper()
    return scripts.get(words[1], words[1][:8]) if name == "EVALSHA" else name


def measure(
    client: redis.Redis, label: str, push: Callable[[], object], samples: int, idle_s: float
) -> Pushes:
    """``samples`` pushes, each after ``idle_s`` of sleep (none: back to back)."""
    for _ in range(WARM_UP):
        push()
    before_send, whole = [], []
    with stamping_sends() as stamps, every_command_logged(client, samples):
        client.slowlog_reset()
        for _ in range(samples):
            if idle_s:
                time.sleep(idle_s)
            stamps.clear()
            start = time.perf_counter()
            push()
            whole.append((time.perf_counter() - start) * 1e6)
            before_send.append((stamps[0] - start) * 1e6)
        sent = sent_by_clients(client.slowlog_get(samples * 100))
    durations: dict[str, list[int]] = defaultdict(list)
    scripts = script_names()
    for entry in sent:
        durations[command_name(entry["command"], scripts)].append(entry["duration"])
    per_push = {name: len(taken) / samples for name, taken in sorted(durations.items())}
    redis_us = sum(per_push[name] * statistics.median(taken) for name, taken in durations.items())
    commands = ", ".join(f"{name} x{count:g}" for name, count in per_push.items())
    before_send_us, whole_us = statistics.median(before_send), statistics.median(whole)
    return Pushes(label, before_send_us, whole_us, redis_us, commands)


def table(rows: list[tuple[Pushes, Pushes]], idle_ms: float) -> str:
    """Each kind of push back to back and after the pause, with the pause's ratio."""
    idle = f"after {idle_ms:g} ms idle"
    lines = [f"{'median, µs':<28}{'back to back':>14}{idle:>20}{'ratio':>8}"]
    for warm, cold in rows:
        lines.append(f"{warm.label} ({warm.commands})")
        pairs = [
            ("before it sends", warm.before_send_us, cold.before_send_us),
            ("the whole call", warm.whole_us, cold.whole_us),
            ("in Redis", warm.redis_us, cold.redis_us),
        ]
        for name, back_to_back, after_idle in pairs:
            ratio = f"{after_idle / back_to_back:.1f}x" if back_to_back else "-"
            lines.append(f"  {name:<26}{back_to_back:>14,.0f}{after_idle:>20,.0f}{ratio:>8}")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.samples < 1 or args.idle_ms <= 0:
        raise SystemExit("--samples must be at least 1 and --idle-ms above 0")
    with tempfile.TemporaryDirectory(prefix="skyline-cold-push-") as tmp:
        redis_process, redis_url = start_redis(Path(tmp))
        placed = "placed by the scheduler"
        try:
            if args.cpus:
                placed = pin(redis_process.pid, os.getpid(), args.cpus)
            bench = open_bench(Path(tmp), redis_url, runs=1)
            client = redis.Redis.from_url(redis_url)
            noop = bench.jobs.noop
            recorded = bench.runtime.dispatcher
            quiet = without_recording(bench).runtime.dispatcher
            kinds = [
                ("redis-py RPUSH, the floor", lambda: client.rpush(FLOOR_KEY, '{"job":"noop"}')),
                ("Skyline dispatch(), recorded", lambda: recorded.dispatch([noop.prepare()])),
                ("Skyline dispatch(), not recorded", lambda: quiet.dispatch([noop.prepare()])),
            ]
            rows = [
                (
                    measure(client, label, push, args.samples, 0),
                    measure(client, label, push, args.samples, args.idle_ms / 1000),
                )
                for label, push in kinds
            ]
        finally:
            redis_process.terminate()
            redis_process.wait()
    print(
        f"A push back to back and after {args.idle_ms:g} ms idle ({args.samples} each way; "
        f"{placed})"
    )
    print(table(rows, args.idle_ms))


if __name__ == "__main__":
    main()
