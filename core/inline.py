"""The ``sync`` connection: run a job in the dispatching process, for development.

Like Laravel's sync driver it runs the job once, calls ``failed()`` when it
raises, and re-raises so the developer sees the error where they dispatched.
"""

from __future__ import annotations

import asyncio

from core.execution import Outcome, Prepared, Result, prepare, run_async, run_sync
from core.payload import parse
from core.registry import registry
from core.settings import Settings


def run_inline(raw: str, settings: Settings) -> Outcome:
    payload = parse(raw, settings.signing_keys())
    prepared = prepare(payload, registry)
    if isinstance(prepared, Outcome):
        outcome = prepared
    elif prepared.is_async:
        outcome = asyncio.run(run_async(prepared, payload, payload.option("timeout")))
    else:
        outcome = run_sync(prepared, payload)
    if outcome.result in (Result.RAISED, Result.FAILED) and outcome.exception is not None:
        if isinstance(prepared, Prepared):
            prepared.definition.call_failed_hook(
                prepared.call, prepared.args, prepared.kwargs, outcome.exception
            )
        raise outcome.exception
    return outcome
