"""An in-process worker on the Claude queues that moves batches along, as ``skyline work``
does (``tests.claude.conftest.work`` runs without workflows, so batches never count)."""

from __future__ import annotations

from core.execution import WorkerDefaults
from core.registry import registry
from core.runtime import Runtime
from core.worker import Worker, WorkerOptions
from tests.claude.conftest import CLAUDE_QUEUES, off_the_main_thread


def work_batches(runtime: Runtime) -> int:
    """Run the Claude queues until they are empty; the worker's exit status."""
    options = WorkerOptions(
        queues=CLAUDE_QUEUES, stop_when_empty=True, defaults=WorkerDefaults(backoff=0)
    )
    keys = runtime.settings.signing_keys()
    workflows = runtime.dispatcher.workflows
    worker = Worker(
        runtime.queue(), lambda: runtime.failed_store, registry, keys, options, workflows
    )
    return off_the_main_thread(worker.run, handle_signals=False)
