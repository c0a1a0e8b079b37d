"""Claude requests as a Skyline workload: ``submit`` one, a worker runs it, SQL keeps it.

    from core.claude import submit

    request_id = submit("Summarise this ticket: ...", owner="team-a", priority="high")
    batch_id = submit_batch([{"prompt": p} for p in prompts], webhook_url="https://...")
    batch_progress(batch_id)  # {"completed": 3, "pending": 7, "percentage": 30.0, ...}

Workers for the ``claude-high,claude-normal,claude-low`` queues need ``core.claude.job``
in their ``app`` setting. The names below load on first use: ``core.settings`` imports
this package's settings table, and the rest of the package imports ``core.settings``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.claude.batches import batch_progress, cancel_batch, submit_batch
    from core.claude.records import ClaudeRequestRecord, ClaudeRequestRepository, Status
    from core.claude.services import ClaudeServices
    from core.claude.submission import RequestValidationError, submit

_HOMES = {
    "submit_batch": "core.claude.batches",
    "batch_progress": "core.claude.batches",
    "cancel_batch": "core.claude.batches",
    "submit": "core.claude.submission",
    "RequestValidationError": "core.claude.submission",
    "ClaudeServices": "core.claude.services",
    "ClaudeRequestRecord": "core.claude.records",
    "ClaudeRequestRepository": "core.claude.records",
    "Status": "core.claude.records",
}

__all__ = [
    "ClaudeRequestRecord",
    "ClaudeRequestRepository",
    "ClaudeServices",
    "RequestValidationError",
    "Status",
    "batch_progress",
    "cancel_batch",
    "submit",
    "submit_batch",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'core.claude' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
