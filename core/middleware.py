"""Job middleware: code that runs around a job's ``handle``.

A middleware's ``before`` may hold a job back (release, delete or fail it through
the job context) and ``after`` sees how the job ended; it may turn an exception
into a decision (release for a cool-down, say). Hooks, not wrappers, so the same
middleware serves sync and async jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.context import JobContext


class Middleware:
    def before(self, job: JobContext) -> bool:
        """Return False (after deciding through ``job``) to keep the job from running."""
        return True

    def after(self, job: JobContext, error: BaseException | None) -> None:
        """Called once the job ran, or was held back by a later middleware."""
