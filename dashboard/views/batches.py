"""Batches: the list (search, pages), one batch's progress, options and jobs, and the
operator's retry and cancel, as pages and as JSON under /api/batches.

A batch records each job when it completes or fails (``BatchRepository.job_ids``); jobs
still waiting have no row, so the pages count them but cannot list them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.batch_store import BatchRecord
from core.claude.batches import retried_as
from core.claude.message_batches import claude_options, is_message_batch
from core.failed import FailedJobRecord
from dashboard.api import ApiResponse, numbered
from dashboard.auth import requires
from dashboard.batch_actions import cancel_batch, retry_batch
from dashboard.claude_requests import claude_services
from dashboard.context import dashboard
from dashboard.flash import flash
from dashboard.paging import NumberedPage, numbered_page
from dashboard.templating import render

JOB_STATUSES = ("failed", "completed")


@dataclass(frozen=True)
class JobsPage:
    status: str
    ids: list[str]
    page: NumberedPage
    failures: dict[str, FailedJobRecord]  # by job id, for the failed ones still stored


def found(request: Request) -> BatchRecord:
    batch_id = request.path_params["id"]
    record = dashboard(request).batches.get(batch_id)
    if record is None:
        raise HTTPException(404, f"There is no batch {batch_id!r}; it may have been pruned.")
    return record


def search_of(request: Request) -> str:
    return request.query_params.get("q", "").strip()


def list_batches(request: Request) -> tuple[list[BatchRecord], NumberedPage, str]:
    batches, q = dashboard(request).batches, search_of(request)
    page = numbered_page(request, batches.count(q))
    return batches.list(limit=page.per_page, offset=page.offset, search=q), page, q


def jobs_of(request: Request, record: BatchRecord) -> JobsPage:
    """One page of the batch's failed or completed jobs (failed first, when there are any)."""
    default = "failed" if record.failed_jobs else "completed"
    status = request.query_params.get("status") or default
    if status not in JOB_STATUSES:
        raise HTTPException(400, f"status must be failed or completed, not {status!r}.")
    dash = dashboard(request)
    total = record.failed_jobs if status == "failed" else record.processed_jobs
    page = numbered_page(request, total)
    ids = dash.batches.job_ids(record.id, status, limit=page.per_page, offset=page.offset)
    failures = dash.failed.by_uuids(ids) if status == "failed" else {}
    return JobsPage(status, ids, page, failures)


def page_url(path: str, **params: str) -> Callable[[int], str]:
    kept = {name: value for name, value in params.items() if value}
    return lambda number: f"{path}?{urlencode({**kept, 'page': number})}"


def batch_path(record: BatchRecord) -> str:
    return f"/batches/{quote(record.id, safe='')}"


def batches_page(request: Request) -> Response:
    records, page, q = list_batches(request)
    per_page = request.query_params.get("per_page", "")
    url = page_url("/batches", q=q, per_page=per_page)
    return render(request, "batches.html", batches=records, page=page, q=q, page_url=url)


def batch_page(request: Request) -> Response:
    record = found(request)
    jobs = jobs_of(request, record)
    per_page = request.query_params.get("per_page", "")
    url = page_url(batch_path(record), status=jobs.status, per_page=per_page)
    claude = claude_of(request, record)
    return render(request, "batch.html", batch=record, jobs=jobs, page_url=url, claude=claude)


def claude_of(request: Request, record: BatchRecord) -> dict[str, Any]:
    """What the page says of a Claude batch: whether its members are Message Batches
    requests (their retry is a new batch), the batch that retried it, the one it retries."""
    requests = is_message_batch(record)
    services = claude_services(request)
    return {
        "requests": requests,
        "retried_as": retried_as(record.id, services=services) if requests else None,
        "retry_of": claude_options(record).get("retry_of"),
    }


def batch_progress(request: Request) -> Response:
    """The live panel, which htmx swaps in while the batch is unfinished."""
    return render(request, "partials/batch_progress.html", batch=found(request))


def retry_form(request: Request) -> Response:
    record = found(request)
    flash(request, retry_batch(request, record).message(record.id))
    return RedirectResponse(batch_path(record), status_code=303)


def cancel_form(request: Request) -> Response:
    record = found(request)
    if cancel_batch(request, record) is None:
        flash(request, f"Batch {record.id} had already finished or been cancelled.")
    else:
        flash(request, f"Cancelled batch {record.id}.")
    return RedirectResponse(batch_path(record), status_code=303)


def summary(record: BatchRecord) -> dict[str, Any]:
    row = dataclasses.asdict(record)
    del row["options"]
    row.update(
        processed_jobs=record.processed_jobs,
        progress=record.progress,
        finished=record.finished,
        cancelled=record.cancelled,
    )
    return row


@requires("viewer")
def api_batches(request: Request) -> ApiResponse:
    """
    ---
    summary: Batches, newest first
    tags: [batches]
    parameters:
      - {name: q, in: query, required: false, schema: {type: string},
         description: "Part of a batch's name, or the start of its id."}
      - {name: page, in: query, required: false, schema: {type: integer, minimum: 1}}
      - {name: per_page, in: query, required: false, schema: {type: integer, minimum: 1}}
    responses:
      "200":
        description: A page of batches.
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {type: array, items: {type: object, description: "As GET /api/batches/{id}."}}
                page: {$ref: "#/components/schemas/NumberedPage"}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
    """
    records, page, _ = list_batches(request)
    return numbered([summary(record) for record in records], page)


@requires("viewer")
def api_batch(request: Request) -> ApiResponse:
    """
    ---
    summary: One batch, with a page of its failed or completed job ids
    tags: [batches]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
      - {name: status, in: query, required: false,
         schema: {type: string, enum: [failed, completed]},
         description: "Which jobs to list; failed when the batch has failures."}
      - {name: page, in: query, required: false, schema: {type: integer, minimum: 1}}
      - {name: per_page, in: query, required: false, schema: {type: integer, minimum: 1}}
    responses:
      "200":
        description: The batch, its options and a page of its job ids.
        content:
          application/json:
            schema:
              type: object
              properties:
                data:
                  type: object
                  description: >
                    id, name, total_jobs, pending_jobs (not yet succeeded), failed_jobs,
                    processed_jobs, progress (0-100), created_at, finished_at, cancelled_at,
                    caught_at (first failure), finished, cancelled.
                options: {type: object}
                jobs:
                  type: object
                  properties:
                    status: {type: string, enum: [failed, completed]}
                    ids: {type: array, items: {type: string}}
                    page: {$ref: "#/components/schemas/NumberedPage"}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    record = found(request)
    jobs = jobs_of(request, record)
    page = {name: getattr(jobs.page, name) for name in ("number", "per_page", "total", "pages")}
    listing = {"status": jobs.status, "ids": jobs.ids, "page": page}
    return ApiResponse({"data": summary(record), "options": record.options, "jobs": listing})


def api_retry(request: Request) -> ApiResponse:
    """
    ---
    summary: Retry the failed jobs of a batch
    description: >
      Needs the operator role. Each failed job goes back on its queue from the failed
      store, under a new id; a job already retried whose retry has not failed is left
      alone, and one whose retry failed too is retried from that failure. A Claude batch
      of the Message Batches API, once ended, sends its errored and expired requests again
      as a new batch (retry_batch; retried lists the new requests): once only, the new
      batch's failures are retried from it.
    tags: [batches]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      "200":
        description: What became of each failed job.
        content:
          application/json:
            schema:
              type: object
              properties:
                retried: {type: array, items: {type: string}, description: The new job ids.}
                in_flight: {type: array, items: {type: string}}
                missing: {type: array, items: {type: string}}
                problems: {type: array, items: {type: string}}
                retry_batch:
                  type: [string, "null"]
                  description: >
                    A Message Batches batch's: the batch that sent its failed requests
                    again, now or (retried empty) before.
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    return ApiResponse(retry_batch(request, found(request)))


def api_cancel(request: Request) -> ApiResponse:
    """
    ---
    summary: Cancel a batch
    description: >
      Needs the operator role. Jobs of the batch that use SkipIfBatchCancelled are then
      deleted without running.
    tags: [batches]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      "200":
        description: The cancelled batch.
        content:
          application/json:
            schema: {type: object, properties: {data: {type: object}}}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
      "409":
        description: The batch had already finished or been cancelled.
        content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}
    """
    record = found(request)
    cancelled = cancel_batch(request, record)
    if cancelled is None:
        raise HTTPException(409, f"Batch {record.id} has already finished or been cancelled.")
    return ApiResponse({"data": summary(cancelled)})


routes = [
    Route("/batches", batches_page, methods=["GET"]),
    Route("/batches/{id}", batch_page, methods=["GET"]),
    Route("/partials/batches/{id}", batch_progress, methods=["GET"]),
    Route("/batches/{id}/retry", retry_form, methods=["POST"]),
    Route("/batches/{id}/cancel", cancel_form, methods=["POST"]),
    Route("/api/batches", api_batches, methods=["GET"]),
    Route("/api/batches/{id}", api_batch, methods=["GET"]),
    Route("/api/batches/{id}/retry", api_retry, methods=["POST"]),
    Route("/api/batches/{id}/cancel", api_cancel, methods=["POST"]),
]
