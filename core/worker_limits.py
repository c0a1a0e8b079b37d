"""When a worker stops on its own: ``--once``, ``--max-jobs``, ``--max-time``, ``--memory``.

A process manager starts a fresh worker; the exit status says why the old one stopped,
so that a pool can tell a planned exit from a crash.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from core.worker import WorkerOptions

log = logging.getLogger("skyline.worker")

EXIT_OK = 0
EXIT_TIMED_OUT = 2  # a job outlived its timeout (see Worker._overrun)
EXIT_MEMORY = 12
# Reading the process's memory costs about 5% of a no-op job's time: once per this long.
MEMORY_CHECK_S = 0.5


class Limits:
    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self._started = time.monotonic()
        self._process = psutil.Process()
        self._next_memory_check = 0.0

    def out_of_time(self) -> bool:
        max_time_s = self.options.max_time_s
        return bool(max_time_s) and time.monotonic() - self._started >= max_time_s

    def after_jobs(self, processed: int) -> int | None:
        """The exit status to stop with, now that ``processed`` jobs are done; None: go on."""
        o = self.options
        if o.once or (o.max_jobs and processed >= o.max_jobs) or self.out_of_time():
            return EXIT_OK
        if o.memory_mb and self._over_memory(o.memory_mb):
            log.warning("memory limit of %d MB exceeded; stopping", o.memory_mb)
            return EXIT_MEMORY
        return None

    def _over_memory(self, limit_mb: int) -> bool:
        now = time.monotonic()
        if now < self._next_memory_check:
            return False
        self._next_memory_check = now + MEMORY_CHECK_S
        return self._process.memory_info().rss > limit_mb * 1024 * 1024
