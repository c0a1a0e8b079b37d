"""The Message Batches endpoints of the fake Anthropic API, mounted by ``FakeAnthropic``.

A batch stays ``in_progress`` until the test ends it (``fake.message_batches.end(...)``),
naming the outcome of any request by its ``custom_id``; a cancelled batch stays
``canceling`` until then. Bodies follow the real API: ``request_counts`` (all
``processing`` until the batch ends), ``results_url`` once it has ended, ``expires_at``
24 hours after creation, and results as JSON Lines.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from tests.claude.fake_anthropic import FakeAnthropic, Reply

BATCHES = "/v1/messages/batches"
LIFETIME = timedelta(hours=24)
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
OUTCOMES = ("succeeded", "errored", "canceled", "expired")


@dataclass
class FakeBatch:
    id: str
    requests: list[dict[str, Any]]
    created_at: datetime
    processing_status: str = "in_progress"
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def custom_ids(self) -> list[str]:
        return [request["custom_id"] for request in self.requests]

    def body(self, base_url: str) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", *OUTCOMES), 0)
        if self.ended_at is None:
            counts["processing"] = len(self.requests)
        for line in self.results:
            counts[line["result"]["type"]] += 1
        ended = self.ended_at is not None
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.processing_status,
            "request_counts": counts,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.created_at + LIFETIME),
            "ended_at": _iso(self.ended_at) if ended else None,
            "cancel_initiated_at": _iso(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"{base_url}{BATCHES}/{self.id}/results" if ended else None,
        }


class MessageBatches:
    """The batches one fake server holds, and the routes that serve them."""

    def __init__(self, fake: FakeAnthropic) -> None:
        self.fake = fake
        self.batches: dict[str, FakeBatch] = {}
        self.routes = [
            Route(BATCHES, self.create, methods=["POST"]),
            Route(f"{BATCHES}/{{batch_id}}", self.retrieve, methods=["GET"]),
            Route(f"{BATCHES}/{{batch_id}}/results", self.results, methods=["GET"]),
            Route(f"{BATCHES}/{{batch_id}}/cancel", self.cancel, methods=["POST"]),
        ]

    def only(self) -> FakeBatch:
        [batch] = self.batches.values()
        return batch

    def end(
        self,
        batch_id: str | None = None,
        outcomes: Mapping[str, Reply | str] | None = None,
        *,
        expired: bool = False,
    ) -> FakeBatch:
        """End a batch (the only one when no id is given). A request named in ``outcomes``
        gets that reply (200: succeeded, else errored) or ``"canceled"`` / ``"expired"``;
        the others succeed, or are canceled when the batch was being cancelled, or expire
        when ``expired`` (the batch ran out of its 24 hours)."""
        batch = self.batches[batch_id] if batch_id else self.only()
        outcomes = outcomes or {}
        default = "expired" if expired else None
        if batch.processing_status == "canceling":
            default = "canceled"
        batch.results = [
            {"custom_id": r["custom_id"], "result": self._result(r, outcomes, default)}
            for r in batch.requests
        ]
        batch.processing_status = "ended"
        batch.ended_at = datetime.now(UTC)
        return batch

    def _result(
        self, request: dict[str, Any], outcomes: Mapping[str, Reply | str], default: str | None
    ) -> dict[str, Any]:
        outcome = outcomes.get(request["custom_id"]) or default
        if isinstance(outcome, str):
            return {"type": outcome}
        reply = outcome or self.fake.default_reply()
        if reply.status == 200:
            return {"type": "succeeded", "message": self.fake.message_for(request["params"], reply)}
        error = {"type": reply.error_type, "message": reply.message}
        return {"type": "errored", "error": {"type": "error", "error": error, "request_id": None}}

    async def create(self, request: Request) -> Response:
        body = await self.fake.receive(request)
        refused = self.fake.refusal(request)
        if refused is not None:
            return refused
        problem = _problem(body)
        if problem:
            return self.fake.error(400, "invalid_request_error", problem)
        batch = FakeBatch(f"msgbatch_{uuid.uuid4().hex[:24]}", body["requests"], datetime.now(UTC))
        self.batches[batch.id] = batch
        return JSONResponse(batch.body(self.fake.url), headers=self.fake.headers())

    async def retrieve(self, request: Request) -> Response:
        await self.fake.receive(request)
        batch = self.batches.get(request.path_params["batch_id"])
        return self._answer(request, batch)

    async def cancel(self, request: Request) -> Response:
        await self.fake.receive(request)
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is not None and batch.processing_status == "in_progress":
            batch.processing_status = "canceling"
            batch.cancel_initiated_at = datetime.now(UTC)
        return self._answer(request, batch)

    async def results(self, request: Request) -> Response:
        await self.fake.receive(request)
        batch = self.batches.get(request.path_params["batch_id"])
        refused = self.fake.refusal(request)
        if refused is not None:
            return refused
        if batch is None or batch.ended_at is None:
            return self.fake.error(404, "not_found_error", "no results for this batch (yet)")
        lines = "".join(json.dumps(line) + "\n" for line in batch.results)
        return Response(lines, media_type="application/binary", headers=self.fake.headers())

    def _answer(self, request: Request, batch: FakeBatch | None) -> Response:
        refused = self.fake.refusal(request)
        if refused is not None:
            return refused
        if batch is None:
            return self.fake.error(404, "not_found_error", "message batch not found")
        return JSONResponse(batch.body(self.fake.url), headers=self.fake.headers())


def _problem(body: Any) -> str | None:
    """What the real API would refuse in a create call (the parts tests can get wrong)."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return "requests: at least one request is required"
    ids = [r.get("custom_id") if isinstance(r, dict) else None for r in requests]
    if not all(isinstance(i, str) and CUSTOM_ID.match(i) for i in ids):
        return "requests.custom_id: must match ^[a-zA-Z0-9_-]{1,64}$"
    if len(set(ids)) != len(ids):
        return "requests.custom_id: must be unique within the batch"
    for r in requests:
        params = r.get("params") or {}
        if not all(params.get(name) for name in ("model", "max_tokens", "messages")):
            return "requests.params: model, max_tokens and messages are required"
    return None


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None
