"""A process pool: the ``skyline work`` processes a supervisor runs for one set of queues.

Each worker gets a pipe on which it writes ``B`` when a job starts and ``I`` when it
ends, so the pool knows which workers are idle (those are stopped first when it
shrinks), how busy the pool is and how long jobs take, without a Redis write per job.
Workers are started with PR_SET_PDEATHSIG, so they get SIGTERM if the master dies.

A worker's first status, ``R``, says its signal handlers are in place. Until then a
SIGUSR2 would kill it (the default action), so the pool signals a pause or a continue
only to ready workers; one that becomes ready gets the signal its state lacks then, and
a worker spawned while the pool is paused starts with ``--paused``.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from core.worker_limits import EXIT_MEMORY, EXIT_OK, EXIT_TIMED_OUT

log = logging.getLogger("skyline.supervisor")

PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_S = (1, 2, 5, 10, 30, 60)
QUICK_DEATH_S = 10.0  # a worker that crashes sooner than this is crashing in a loop
PLANNED_EXITS = (EXIT_OK, EXIT_TIMED_OUT, EXIT_MEMORY)  # max-jobs/time, a killed job, --memory


def _child_setup(nice: int) -> Callable[[], None]:
    """Runs in the child before exec: SIGTERM when the parent dies, and the pool's niceness."""

    def setup() -> None:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if nice:
            os.nice(nice)

    return setup


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    status_fd: int
    started_at: float
    paused: bool  # what the worker was last told, by a flag or a signal
    busy: int = 0
    stopping_since: float | None = None
    ready: bool = False  # its first status came: its signal handlers are in place

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class PoolStats:
    """What the pool saw since the last read."""

    completed: int = 0
    busy_seconds: float = 0.0


@dataclass
class ProcessPool:
    queues: str
    work_args: list[str]
    env: dict[str, str]
    grace_s: float = 60.0
    nice: int = 0
    workers: list[WorkerProcess] = field(default_factory=list)
    paused: bool = False
    _stats: PoolStats = field(default_factory=PoolStats)
    _last_read: float | None = None
    _quick_deaths: int = 0
    _restart_at: float = 0.0

    @property
    def live(self) -> list[WorkerProcess]:
        """Workers that count: running and not told to stop."""
        return [w for w in self.workers if w.stopping_since is None]

    @property
    def busy(self) -> int:
        return sum(w.busy for w in self.live)

    def scale(self, count: int, now: float) -> None:
        """Grow or shrink to ``count`` live workers; shrinking stops idle workers first."""
        live = self.live
        for _ in range(count - len(live)):
            self._spawn(now)
        surplus = len(live) - count
        if surplus > 0:
            for worker in sorted(live, key=lambda w: (w.busy, -w.started_at))[:surplus]:
                self._stop(worker, now)

    def read_status(self, now: float) -> PoolStats:
        """Drain the workers' status pipes; returns and resets the stats since the last read."""
        elapsed = 0.0 if self._last_read is None else now - self._last_read
        self._last_read = now
        for worker in self.workers:
            self._stats.busy_seconds += worker.busy * elapsed
            status = _read_all(worker.status_fd)
            if status and not worker.ready:
                worker.ready = True
                self._tell(worker)
            for byte in status:
                if byte == ord("B"):
                    worker.busy += 1
                elif byte == ord("I") and worker.busy > 0:
                    worker.busy -= 1
                    self._stats.completed += 1
        stats, self._stats = self._stats, PoolStats()
        return stats

    def monitor(self, now: float) -> None:
        """Reap exited workers, restart unexpected deaths (with backoff), kill overdue stops."""
        for worker in list(self.workers):
            code = worker.process.poll()
            if code is None:
                if worker.stopping_since is not None and now - worker.stopping_since > self.grace_s:
                    log.warning(
                        "worker %d still busy %.0f s after SIGTERM: killing it "
                        "(its job comes back after its lease)",
                        worker.pid,
                        self.grace_s,
                    )
                    worker.process.kill()
                continue
            self._forget(worker)
            if worker.stopping_since is None:
                self._died(worker, code, now)

    def pause(self) -> None:
        self.paused = True
        for worker in self.live:
            self._tell(worker)

    def resume(self) -> None:
        self.paused = False
        for worker in self.live:
            self._tell(worker)

    def terminate(self, now: float) -> None:
        for worker in self.live:
            self._stop(worker, now)

    def kill(self) -> None:
        for worker in self.workers:
            worker.process.kill()

    def _died(self, worker: WorkerProcess, code: int, now: float) -> None:
        """Restart at once after a planned exit; back off when a worker keeps crashing."""
        crashed = code not in PLANNED_EXITS and now - worker.started_at < QUICK_DEATH_S
        self._quick_deaths = self._quick_deaths + 1 if crashed else 0
        backoff = RESTART_BACKOFF_S[min(self._quick_deaths, len(RESTART_BACKOFF_S)) - 1]
        delay = backoff if crashed else 0
        self._restart_at = now + delay
        log.warning(
            "worker %d for %s exited with %s; restarting in %d s",
            worker.pid,
            self.queues,
            code,
            delay,
        )

    def _spawn(self, now: float) -> None:
        if now < self._restart_at:
            return
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        command = [sys.executable, "-m", "core.cli", *self.work_args, "--status-fd", str(write_end)]
        if self.paused:
            command.append("--paused")
        process = subprocess.Popen(  # own process group: a terminal's Ctrl-C reaches the master,
            command,  # which then stops its workers in order
            env=self.env,
            pass_fds=(write_end,),
            preexec_fn=_child_setup(self.nice),
            process_group=0,
        )
        os.close(write_end)
        self.workers.append(WorkerProcess(process, read_end, now, self.paused))

    def _stop(self, worker: WorkerProcess, now: float) -> None:
        worker.stopping_since = now
        worker.process.send_signal(signal.SIGTERM)

    def _forget(self, worker: WorkerProcess) -> None:
        self.workers.remove(worker)
        os.close(worker.status_fd)

    def _tell(self, worker: WorkerProcess) -> None:
        """Pause or continue a ready worker whose state is not the pool's."""
        if worker.ready and worker.paused != self.paused:
            worker.process.send_signal(signal.SIGUSR2 if self.paused else signal.SIGCONT)
            worker.paused = self.paused


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
