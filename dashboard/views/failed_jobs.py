"""Retrying and forgetting failed jobs, from the failed list, the job page and the API.

Operators only; each change goes to the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.api import ApiResponse
from dashboard.auth import requires
from dashboard.context import dashboard
from dashboard.failed_retry import MAX_IDS, RetryReport, forget, retry_ids, retry_matching
from dashboard.flash import flash
from dashboard.job_lists import FAILED_FILTERS, JobFilter, parse_filter
from dashboard.views.session import safe_next

LIST = "/jobs/failed"
BODY_SHAPE = 'Send either {"ids": [...]} or {"filter": {"queue": ..., "job": ..., "q": ...}}.'


def _back(form: FormData, flt: JobFilter) -> RedirectResponse:
    """To the form's ``next`` page (a path on this site), else the list with its filter."""
    target = safe_next(str(form.get("next") or "")) if form.get("next") else None
    query = flt.query()
    return RedirectResponse(target or (f"{LIST}?{query}" if query else LIST), status_code=303)


def _ids(values: list[Any], status_code: int) -> list[str]:
    if len(values) > MAX_IDS:
        raise HTTPException(
            status_code, f"At most {MAX_IDS} ids at a time: retry more by filter instead."
        )
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
        raise HTTPException(status_code, "ids must be failed job ids (numbers) or job uuids.")
    return [str(v).strip() for v in values]


def _record_report(request: Request, action: str, target: str, report: RetryReport) -> None:
    dashboard(request).record(request, action, target, **report.audit_detail())


# --- pages -----------------------------------------------------------------------------

FormHandler = Callable[[Request, FormData, JobFilter], Response]


def form_action(handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
    """An operator's form: its body read here, its filter checked, the work done in the
    thread pool, and back (303) to where the form came from."""

    @requires("operator")
    async def view(request: Request) -> Response:
        form = await request.form()
        flt = parse_filter(form, FAILED_FILTERS, 400)
        return await run_in_threadpool(handler, request, form, flt)

    return view


def _retry_one(request: Request, form: FormData, flt: JobFilter) -> Response:
    failed_id = request.path_params["id"]
    report = retry_ids(dashboard(request), [failed_id])
    if report.unknown:
        raise HTTPException(404, f"No failed job with id {failed_id!r}.")
    _record_report(request, "failed.retry", failed_id, report)
    flash(request, report.summary())
    return _back(form, flt)


def _forget(request: Request, form: FormData, flt: JobFilter) -> Response:
    failed_id = request.path_params["id"]
    forgotten = forget(dashboard(request), failed_id)
    if forgotten is None:
        raise HTTPException(404, f"No failed job with id {failed_id!r}.")
    dashboard(request).record(request, "failed.forget", str(forgotten.id), uuid=forgotten.uuid)
    flash(request, f"Forgot failed job {forgotten.id} ({forgotten.job_name}).")
    return _back(form, flt)


def _retry_selected(request: Request, form: FormData, flt: JobFilter) -> Response:
    ids = [i for i in _ids(form.getlist("ids"), 400) if i]
    if not ids:
        flash(request, "Select the failed jobs to retry first (the boxes on the left).")
        return _back(form, flt)
    report = retry_ids(dashboard(request), ids)
    _record_report(request, "failed.retry_selected", ",".join(ids), report)
    flash(request, report.summary())
    return _back(form, flt)


def _retry_matching(request: Request, form: FormData, flt: JobFilter) -> Response:
    report = retry_matching(dashboard(request), flt)
    _record_report(request, "failed.retry_matching", _describe(flt), report)
    flash(request, report.summary())
    return _back(form, flt)


def _describe(flt: JobFilter) -> str:
    return urlencode(flt.params()) or "all failed jobs"


# --- API -------------------------------------------------------------------------------


@requires("operator")
def api_retry_one(request: Request) -> Response:
    """Queue a failed job again under a new id, with its attempts reset.
    ---
    summary: Retry a failed job
    description: Needs the operator role; written to the audit log.
    tags: [failed jobs]
    parameters:
      - name: id
        in: path
        required: true
        description: The failed job's number or its job id.
        schema: {type: string}
    responses:
      "200":
        description: The report, with the new job's id.
        content:
          application/json:
            schema: {$ref: "#/components/schemas/RetryReport"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
      "422":
        description: The stored payload cannot be retried (unreadable or not signed).
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Error"}
    """
    failed_id = request.path_params["id"]
    report = retry_ids(dashboard(request), [failed_id])
    if report.unknown:
        raise HTTPException(404, f"No failed job with id {failed_id!r}.")
    _record_report(request, "failed.retry", failed_id, report)
    if report.refused:
        raise HTTPException(422, report.refused[0].reason)
    return ApiResponse(report)


@requires("operator")
def api_forget(request: Request) -> Response:
    """Delete a failed job from the failed store.
    ---
    summary: Forget a failed job
    description: Needs the operator role; written to the audit log.
    tags: [failed jobs]
    parameters:
      - name: id
        in: path
        required: true
        description: The failed job's number or its job id.
        schema: {type: string}
    responses:
      "200":
        description: Forgotten.
        content:
          application/json:
            schema:
              type: object
              properties: {forgotten: {type: integer}, uuid: {type: string}}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    failed_id = request.path_params["id"]
    forgotten = forget(dashboard(request), failed_id)
    if forgotten is None:
        raise HTTPException(404, f"No failed job with id {failed_id!r}.")
    dashboard(request).record(request, "failed.forget", str(forgotten.id), uuid=forgotten.uuid)
    return ApiResponse({"forgotten": forgotten.id, "uuid": forgotten.uuid})


@requires("operator")
async def api_retry_many(request: Request) -> Response:
    """Retry failed jobs by id, or every one a filter matches that was not retried yet.
    ---
    summary: Retry many failed jobs
    description: >
      Send either ids (at most 1000) or a filter; unknown ids are reported and the rest
      retried. A filter retries what failed before the request, not the retries that fail
      again meanwhile. Needs the operator role; written to the audit log.
    tags: [failed jobs]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            properties:
              ids: {type: array, maxItems: 1000, items: {type: [string, integer]}}
              filter:
                type: object
                additionalProperties: false
                properties: {queue: {type: string}, job: {type: string}, q: {type: string}}
    responses:
      "200":
        description: What was retried, what was unknown, what could not be retried.
        content:
          application/json:
            schema: {$ref: "#/components/schemas/RetryReport"}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "422":
        description: Neither ids nor a filter (or both), or a bad value.
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Error"}
    """
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, f"The body is not JSON. {BODY_SHAPE}") from None
    return await run_in_threadpool(_api_retry_many, request, body)


def _api_retry_many(request: Request, body: Any) -> Response:
    if not isinstance(body, dict) or ("ids" in body) == ("filter" in body):
        raise HTTPException(422, BODY_SHAPE)
    dash = dashboard(request)
    if "ids" in body:
        if not isinstance(body["ids"], list) or not body["ids"]:
            raise HTTPException(422, "ids must be a list of one or more failed job ids.")
        ids = _ids(body["ids"], 422)
        report = retry_ids(dash, ids)
        _record_report(request, "failed.retry_selected", ",".join(ids), report)
        return ApiResponse(report)
    values = body["filter"]
    unknown = set(values) - set(FAILED_FILTERS) if isinstance(values, dict) else None
    if unknown is None or unknown:
        raise HTTPException(422, f"filter must be an object with {', '.join(FAILED_FILTERS)}.")
    flt = parse_filter(values, FAILED_FILTERS, 422)
    report = retry_matching(dash, flt)
    _record_report(request, "failed.retry_matching", _describe(flt), report)
    return ApiResponse(report)


routes = [
    Route("/jobs/failed/retry", form_action(_retry_selected), methods=["POST"]),
    Route("/jobs/failed/retry-matching", form_action(_retry_matching), methods=["POST"]),
    Route("/jobs/failed/{id}/retry", form_action(_retry_one), methods=["POST"]),
    Route("/jobs/failed/{id}/forget", form_action(_forget), methods=["POST"]),
    Route("/api/failed/retry", api_retry_many, methods=["POST"]),
    Route("/api/failed/{id}/retry", api_retry_one, methods=["POST"]),
    Route("/api/failed/{id}/forget", api_forget, methods=["POST"]),
]
