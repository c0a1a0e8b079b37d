"""Chains and batches at run time: what happens after a job, read from its signed payload.

A payload may carry ``chain`` (the links still to run) and ``chain_catch`` (a callback
body), and ``batch`` (``{"id", "member"}``: the batch and the unit it counts as; a chain
inside a batch counts once, through its last link). A link is ``{"job": body}`` or
``{"batch": spec}``; a batch spec holds ``items`` (``{"job": body}`` or ``{"chain": links}``)
and ``options`` (callbacks, ``allow_failures``, and ``continuation``: the rest of a chain
the batch sits in). Callbacks are job bodies, pushed with ``batch_id`` / ``error`` added.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING

from core.execution import Outcome, Result
from core.locks import Locks
from core.payload import Payload, new_job_id, now_ms

if TYPE_CHECKING:
    from core.batch_store import BatchRecord, BatchRepository, BatchTransition
    from core.dispatcher import Dispatcher, Pushable

log = logging.getLogger("skyline.workflows")


WORKFLOW_FIELDS = ("chain", "chain_catch", "batch")


def after_job(
    workflows: Workflows | None, locks: Locks, payload: Payload, outcome: Outcome, result: Result
) -> None:
    """What a settled job sets going: its chain's next link, its batch's count, its unique lock.

    ``result`` is what finally happened (a raised exception may have become a failure).
    """
    body = payload.body
    if workflows is not None and any(body.get(name) for name in WORKFLOW_FIELDS):
        if result is Result.COMPLETED:
            workflows.completed(payload, outcome.chain)
        elif result is Result.FAILED:
            workflows.failed(payload, outcome.exception)
        elif result is Result.DELETED and body.get("batch"):
            workflows.member_succeeded(body["batch"])
    unique = body.get("unique")
    if unique and not unique.get("until_processing"):
        locks.release(unique["key"], payload.id)


def describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}" if exc is not None else "failed"


class Workflows:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @cached_property
    def batches(self) -> BatchRepository:
        """The batch store, opened on the first batch: chains live in their payloads."""
        from core.batch_store import BatchRepository

        return BatchRepository(self.dispatcher.engine)

    # --- starting ---------------------------------------------------------------------

    def start_chain(self, links: list[dict], catch: dict | None, batch: dict | None = None) -> None:
        self.dispatcher.push_bodies(self._chain_bodies(links, catch, batch))

    def start_batch(self, spec: dict, continuation: dict | None = None) -> BatchRecord:
        record, bodies = self._open_batch(spec, continuation)
        self.dispatcher.push_bodies(bodies)
        if record.total_jobs == 0:
            self._finish_empty(record)
        return record

    def _finish_empty(self, record: BatchRecord) -> None:
        """Nothing to wait for: an empty batch succeeds at once, like Laravel's."""
        for name in ("then", "finally"):
            self._fire_option(record.options, name, record.id)
        if record.options.get("continuation"):
            self._continue(record, record.options["continuation"], None)

    def add_to_batch(self, batch_id: str, items: list[dict]) -> BatchRecord:
        """More jobs for a running batch, counted before they are pushed: it cannot end early."""
        record = self.batches.add_jobs(batch_id, len(items))
        bodies: list[Pushable] = []
        for item in items:
            bodies += self._item_bodies(item, batch_id)
        self.dispatcher.push_bodies(bodies)
        return record

    def _open_batch(self, spec: dict, continuation: dict | None) -> tuple[BatchRecord, list]:
        batch_id = new_job_id()
        options = {**spec.get("options", {}), "continuation": continuation}
        record = self.batches.create(
            id=batch_id, name=spec.get("name", ""), total_jobs=len(spec["items"]), options=options
        )
        bodies: list[Pushable] = []
        for item in spec["items"]:
            bodies += self._item_bodies(item, batch_id)
        return record, bodies

    def _item_bodies(self, item: dict, batch_id: str) -> list[Pushable]:
        if "chain" in item:
            return self._chain_bodies(item["chain"], None, {"id": batch_id, "member": new_job_id()})
        body = _fresh(item["job"])
        body["batch"] = {"id": batch_id, "member": body["id"]}
        return [(body, 0.0)]

    def _chain_bodies(self, links: list[dict], catch: dict | None, batch: dict | None) -> list:
        """The first link's bodies; the rest of the chain rides in its payload."""
        if not links:
            return []
        first, rest = links[0], links[1:]
        if "batch" in first:
            continuation = {"links": rest, "catch": catch, "batch": batch}
            return self._open_batch(first["batch"], continuation)[1]
        body = _fresh(first["job"])
        body.update(chain=rest, chain_catch=catch)
        if batch is not None:
            body["batch"] = batch
        return [(body, 0.0)]

    # --- what the worker reports ------------------------------------------------------

    def completed(self, payload: Payload, chain: list[dict] | None) -> None:
        body = payload.body
        links = body.get("chain") if chain is None else chain
        if links:
            self.start_chain(links, body.get("chain_catch"), body.get("batch"))
        elif body.get("batch"):
            self.member_succeeded(body["batch"])

    def failed(self, payload: Payload, exc: BaseException | None) -> None:
        body = payload.body
        if body.get("chain_catch"):
            self.fire(body["chain_catch"], error=describe(exc))
        if body.get("batch"):
            self.member_failed(body["batch"], exc)

    def member_succeeded(self, batch: dict) -> None:
        self._after(self.batches.record_success(batch["id"], batch["member"]), None)

    def member_failed(self, batch: dict, exc: BaseException | None) -> None:
        transition = self.batches.record_failure(batch["id"], batch["member"])
        options = transition.record.options
        if transition.first_failure:
            self._fire_option(options, "catch", transition.record.id, error=describe(exc))
            if not options.get("allow_failures"):
                self.batches.cancel(transition.record.id)
            continuation = options.get("continuation") or {}
            if continuation.get("catch"):
                self.fire(continuation["catch"], error=describe(exc))
        self._after(transition, exc)

    def _after(self, transition: BatchTransition, exc: BaseException | None) -> None:
        record = transition.record
        options = record.options
        if transition.all_succeeded:
            self._fire_option(options, "then", record.id)
        if transition.finished_now:
            self._fire_option(options, "finally", record.id)
        continuation = options.get("continuation")
        if continuation and transition.finished_now:
            self._continue(record, continuation, exc)

    def _continue(self, record: BatchRecord, continuation: dict, exc: BaseException | None) -> None:
        """A batch inside a chain finished: go on with the chain, or report to an outer batch."""
        succeeded = record.failed_jobs == 0 or record.options.get("allow_failures")
        outer = continuation.get("batch")
        if not succeeded:
            if outer:
                self.member_failed(outer, exc)
        elif continuation.get("links"):
            self.start_chain(continuation["links"], continuation.get("catch"), outer)
        elif outer:
            self.member_succeeded(outer)

    def _fire_option(self, options: dict, name: str, batch_id: str, **extra: str) -> None:
        if options.get(name):
            self.fire(options[name], batch_id=batch_id, **extra)

    def fire(self, callback: dict, **kwargs: str) -> None:
        body = _fresh(callback)
        body["kwargs"] = {**body.get("kwargs", {}), **kwargs}
        self.dispatcher.push_bodies([(body, 0.0)])


def _fresh(body: dict) -> dict:
    """A copy of a stored body with its own id, as if dispatched now."""
    return {**body, "id": new_job_id(), "pushed_at": now_ms()}
