"""Where a worker's jobs run: its ``concurrency`` slots.

With one slot a job runs on the calling thread (an async one on an event loop kept
for the purpose). With more, async jobs share one event loop thread and sync jobs
run in a thread pool; a slot is given back when its job has been finished.

Async jobs started together reach the loop in one hand-over (``starting_together``).
A hand-over per job woke the loop's thread for each, to vie with the starting thread for
the GIL: in one, 2 workers x 50 slots drained 10 ms jobs 1.22x as fast (bench/README).

Likewise, async jobs that end in one turn of the loop are finished together, in the next
turn. Finished as each ended, a job whose last step makes a blocking call (a sync Redis
client, say) gave the GIL to the starting thread between two slots coming back, and it
reserved jobs for one free slot at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor

from core.execution import Outcome

Finish = Callable[[Outcome], None]


class Slots:
    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._free = threading.BoundedSemaphore(concurrency)
        self._taken = 0
        self._taken_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._starting: list[Coroutine[None, None, None]] | None = None  # see starting_together
        self._finishing: list[tuple[Finish, Outcome]] = []  # see _finish_soon
        self._tasks: set[asyncio.Task[None]] = set()  # the loop itself holds tasks weakly
        self._pool: ThreadPoolExecutor | None = None
        self._loop_thread: threading.Thread | None = None
        if concurrency > 1:
            self._pool = ThreadPoolExecutor(concurrency, "skyline-slot")
            self._loop_thread = threading.Thread(
                target=self._loop.run_forever, name="skyline-loop", daemon=True
            )
            self._loop_thread.start()

    def take(self, wait_s: float) -> int:
        """Claim every free slot (waiting up to ``wait_s`` for the first); how many."""
        if not self._free.acquire(timeout=wait_s):
            return 0
        taken = 1
        while taken < self.concurrency and self._free.acquire(blocking=False):
            taken += 1
        with self._taken_lock:
            self._taken += taken
        return taken

    def give_back(self, count: int = 1) -> None:
        with self._taken_lock:
            self._taken -= count
        for _ in range(count):
            self._free.release()

    def in_use(self) -> bool:
        """Whether a slot is taken: a job holds one from before it starts until its finish
        step has returned."""
        return self._taken > 0

    def run_sync(self, job: Callable[[], Outcome], finish: Finish) -> None:
        if self._pool is None:
            finish(job())
        else:
            self._pool.submit(lambda: finish(job()))

    def run_async(
        self,
        job: Callable[[], Awaitable[Outcome]],
        finish: Finish,
        finish_without_io: Callable[[Outcome], bool],
    ) -> None:
        """``finish_without_io``: whether the finish step is cheap enough to run on the loop."""
        if self._pool is None:
            finish(self._loop.run_until_complete(job()))
            return

        async def slot() -> None:
            outcome = await job()
            if finish_without_io(outcome):
                self._finish_soon(finish, outcome)
            else:
                await asyncio.to_thread(finish, outcome)

        if self._starting is None:
            self._loop.call_soon_threadsafe(self._create_tasks, [slot()])
        else:
            self._starting.append(slot())

    @contextlib.contextmanager
    def starting_together(self) -> Iterator[None]:
        """Async jobs run inside reach the loop when the block ends, in one hand-over."""
        self._starting = []
        try:
            yield
        finally:
            starting, self._starting = self._starting, None
            if starting:
                self._loop.call_soon_threadsafe(self._create_tasks, starting)

    def _finish_soon(self, finish: Finish, outcome: Outcome) -> None:
        """Finish in the loop's next turn, with every job that ends in this one."""
        if not self._finishing:
            self._loop.call_soon(self._finish_together)
        self._finishing.append((finish, outcome))

    def _finish_together(self) -> None:
        finishing, self._finishing = self._finishing, []
        for finish, outcome in finishing:
            finish(outcome)

    def _create_tasks(self, slots: list[Coroutine[None, None, None]]) -> None:
        for slot in slots:
            task = self._loop.create_task(slot)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def drain(self) -> None:
        """Wait until every slot is back, then stop the threads."""
        for _ in range(self.concurrency):
            self._free.acquire()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._loop_thread is not None:
            self._loop_thread.join()
        self._loop.close()
