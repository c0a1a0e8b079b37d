"""The benchmark's worker processes: started in their own process groups, stopped as
groups, and their memory summed over the whole tree (pools fork children)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

STOP_TIMEOUT_S = 15.0


def parent_map() -> dict[int, int]:
    """Every live process and its parent, from /proc/<pid>/stat."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def process_tree(roots: list[int], parents: dict[int, int]) -> list[int]:
    children = defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    found, stack = [], list(roots)
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children[pid])
    return found


def rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_rss_mb(roots: list[int]) -> tuple[float, int]:
    """The summed RSS of the roots and all their descendants, and how many they are."""
    pids = process_tree(roots, parent_map())
    return sum(rss_kb(pid) for pid in pids) / 1024, len(pids)


def start_workers(
    folder: Path, commands: list[list[str]], env: dict[str, str], tag: str
) -> list[subprocess.Popen]:
    """Each command in its own session, so that stopping it stops its children too."""
    workers = []
    for i, argv in enumerate(commands):
        with open(folder / f"{tag}-{i}.log", "w") as log:
            workers.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    cwd=folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as one
                )
            )
    return workers


def signal_groups(workers: list[subprocess.Popen], signum: int) -> None:
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone
            os.killpg(worker.pid, signum)


def stop_workers(workers: list[subprocess.Popen]) -> None:
    """SIGTERM each process group, then SIGKILL whatever is left after the grace time."""
    signal_groups(workers, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for worker in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL follows
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
    signal_groups(workers, signal.SIGKILL)
    for worker in workers:
        worker.wait()
