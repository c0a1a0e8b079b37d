"""The job lists (pending, completed, silenced, failed) and the job detail, as pages and
as JSON under /api."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboard.api import ApiResponse, by_cursor, numbered
from dashboard.context import Dashboard, dashboard
from dashboard.job_detail import read_detail
from dashboard.job_lists import (
    RECORD_LISTS,
    STATUSES,
    JobFilter,
    JobRow,
    failed_rows,
    failed_total,
    filters_of,
    parse_filter,
    record_rows,
    tab_counts,
)
from dashboard.paging import (
    MAX_PER_PAGE,
    PER_PAGE,
    NumberedPage,
    cursor,
    numbered_page,
    whole_number,
)
from dashboard.templating import render


def _status(request: Request) -> str:
    status = request.path_params["status"]
    if status not in STATUSES:
        raise HTTPException(
            404, f"There is no {status!r} job list: pick pending, completed, silenced or failed."
        )
    return status


def _filter(request: Request, status: str) -> JobFilter:
    return parse_filter(request.query_params, filters_of(status), 400)


def _failed_page(
    request: Request, dash: Dashboard, flt: JobFilter
) -> tuple[list[JobRow], NumberedPage]:
    page = numbered_page(request, failed_total(dash, flt))
    return failed_rows(dash, flt, page.offset, page.per_page), page


def _unknown(job_id: str) -> str:
    return (
        f"No job {job_id!r}: its record has expired (or was never written), "
        "and the failed store does not hold it."
    )


def jobs_page(request: Request) -> Response:
    status = _status(request)
    flt, dash = _filter(request, status), dashboard(request)
    if status != "failed":
        return _records_page(request, dash, status, flt)
    rows, page = _failed_page(request, dash, flt)
    context = {"status": status, "filter": flt, "counts": tab_counts(dash)}
    return render(request, "jobs.html", **context, rows=rows, page=page)


def _records_page(request: Request, dash: Dashboard, status: str, flt: JobFilter) -> Response:
    """The newest page refreshes itself: htmx asks for the list alone (a boosted link or
    form asks for the whole page)."""
    before = cursor(request)
    limit = whole_number(request, "per_page", PER_PAGE, MAX_PER_PAGE)
    listing = record_rows(dash, RECORD_LISTS[status], flt, before, limit)
    context = {"status": status, "filter": flt, "listing": listing, "before": before}
    polled = request.headers.get("hx-request") and not request.headers.get("hx-boosted")
    if polled and before is None:
        response = render(request, "partials/jobs_records.html", **context)
    else:
        response = render(request, "jobs.html", **context, counts=tab_counts(dash))
    response.headers["Vary"] = "HX-Request"
    return response


def job_page(request: Request) -> Response:
    job_id = request.path_params["id"]
    detail = read_detail(dashboard(request), job_id)
    if detail is None:
        raise HTTPException(404, _unknown(job_id))
    monitored = set(dashboard(request).records.monitored())
    return render(request, "job.html", job=detail, monitored=monitored)


def api_jobs(request: Request) -> Response:
    """Pending, completed and silenced jobs come from Redis (newest first, by cursor),
    failed jobs from the SQL store (numbered pages).
    ---
    summary: List jobs of one status
    tags: [jobs]
    parameters:
      - name: status
        in: path
        required: true
        schema: {type: string, enum: [pending, completed, silenced, failed]}
      - {name: queue, in: query, schema: {type: string, maxLength: 255}}
      - {name: job, in: query, description: The job's name., schema: {type: string}}
      - name: tag
        in: query
        description: Jobs with this tag (pending, completed and silenced only).
        schema: {type: string}
      - name: q
        in: query
        description: Text in the exception's class or message (failed only).
        schema: {type: string}
      - name: before
        in: query
        description: The previous page's next_before (pending, completed and silenced).
        schema: {type: number}
      - {name: page, in: query, description: The page number (failed)., schema: {type: integer}}
      - {name: per_page, in: query, schema: {type: integer, minimum: 1, maximum: 200}}
    responses:
      "200":
        description: >
          One page of jobs, newest first. page is a CursorPage for pending, completed and
          silenced, a NumberedPage for failed.
        content:
          application/json:
            schema:
              type: object
              properties:
                data:
                  type: array
                  items:
                    type: object
                    properties:
                      id: {type: string}
                      name: {type: string}
                      queue: {type: string}
                      status: {type: string}
                      tags: {type: array, items: {type: string}}
                      attempts: {type: [integer, "null"]}
                      pushed_at: {type: [string, "null"], format: date-time}
                      finished_at: {type: [string, "null"], format: date-time}
                      runtime_ms: {type: [number, "null"]}
                      exception: {type: [string, "null"]}
                      failed_id: {type: [integer, "null"]}
                      retried_by: {type: array, items: {type: string}}
                page:
                  oneOf:
                    - {$ref: "#/components/schemas/CursorPage"}
                    - {$ref: "#/components/schemas/NumberedPage"}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    status = _status(request)
    flt, dash = _filter(request, status), dashboard(request)
    if status == "failed":
        rows, page = _failed_page(request, dash, flt)
        return numbered(rows, page)
    limit = whole_number(request, "per_page", PER_PAGE, MAX_PER_PAGE)
    listing = record_rows(dash, RECORD_LISTS[status], flt, cursor(request), limit)
    return by_cursor(listing.rows, listing.next_before)


def api_job(request: Request) -> Response:
    """The Redis record while it lasts, with the failed store's row when the job failed.
    ---
    summary: One job
    tags: [jobs]
    parameters:
      - name: id
        in: path
        required: true
        description: The job's id, or a failed job's number.
        schema: {type: string}
    responses:
      "200":
        description: >
          The job with its payload, timeline, exception and traceback, retries and batch;
          expired is true when the record is gone and this comes from the failed store.
        content:
          application/json:
            schema:
              type: object
              properties:
                id: {type: string}
                name: {type: string}
                queue: {type: string}
                connection: {type: string}
                status: {type: string}
                tags: {type: array, items: {type: string}}
                attempts: {type: [integer, "null"]}
                runtime_ms: {type: [number, "null"]}
                payload: {description: The envelope with its signed body opened.}
                timeline:
                  type: array
                  items:
                    type: object
                    properties:
                      label: {type: string}
                      at: {type: string, format: date-time}
                      tone: {type: string}
                exception: {type: [string, "null"]}
                traceback: {type: [string, "null"]}
                failed_id: {type: [integer, "null"]}
                retried_from: {type: [string, "null"]}
                retried_by: {type: array, items: {type: string}}
                batch_id: {type: [string, "null"]}
                expired: {type: boolean}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    job_id = request.path_params["id"]
    detail = read_detail(dashboard(request), job_id)
    if detail is None:
        raise HTTPException(404, _unknown(job_id))
    return ApiResponse(detail)


routes = [
    Route("/jobs/{status}", jobs_page, methods=["GET"]),
    Route("/job/{id}", job_page, methods=["GET"]),
    Route("/api/jobs/{status}", api_jobs, methods=["GET"]),
    Route("/api/job/{id}", api_job, methods=["GET"]),
]
