"""Monitored tags: the jobs pushed with such a tag are kept for the monitored window (a week
by default) however busy the other lists are. As pages and as JSON under /api."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.job_record import JobIndex
from dashboard.api import ApiResponse, by_cursor
from dashboard.auth import requires
from dashboard.context import Dashboard, dashboard
from dashboard.flash import flash
from dashboard.job_lists import RecordRows, row_of_record, text_problem
from dashboard.paging import MAX_PER_PAGE, PER_PAGE, cursor, whole_number
from dashboard.templating import render


def checked_tag(value: Any) -> tuple[str, str | None]:
    """The tag without surrounding spaces, and what is wrong with it (None when nothing)."""
    tag = value.strip() if isinstance(value, str) else ""
    if not tag:
        return tag, "Enter a tag to monitor, such as Customer:42 or emails."
    return tag, text_problem("The tag", tag)


def _monitored_tag(request: Request) -> str:
    tag = request.path_params["tag"]
    if tag not in dashboard(request).records.monitored():
        raise HTTPException(
            404, f"The tag {tag!r} is not monitored: add it on the Monitoring page."
        )
    return tag


def _tag_rows(request: Request, tag: str) -> tuple[RecordRows, int | None]:
    before = cursor(request)
    limit = whole_number(request, "per_page", PER_PAGE, MAX_PER_PAGE)
    page = dashboard(request).records.page(JobIndex.MONITORED, tag=tag, before=before, limit=limit)
    return RecordRows([row_of_record(r) for r in page.records], page.next_before), before


def _added(request: Request, dash: Dashboard, tag: str) -> bool:
    """Monitor ``tag``; False when it was monitored already."""
    if tag in dash.records.monitored():
        return False
    dash.records.monitor(tag)
    dash.record(request, "monitoring.add", tag)
    return True


def _removed(request: Request, tag: str) -> None:
    dash = dashboard(request)
    dash.records.unmonitor(tag)
    dash.record(request, "monitoring.remove", tag)


# --- pages -----------------------------------------------------------------------------


def monitoring_page(request: Request) -> Response:
    return _monitoring(request)


def _monitoring(
    request: Request, status_code: int = 200, error: str | None = None, entered: str = ""
) -> Response:
    dash = dashboard(request)
    return render(
        request,
        "monitoring.html",
        status_code,
        tags=dash.records.monitored(),
        error=error,
        entered=entered,
        window_s=dash.settings.records.monitored_s,
    )


@requires("operator")
async def add_page(request: Request) -> Response:
    form = await request.form()
    return await run_in_threadpool(_add_page, request, form)


def _add_page(request: Request, form: FormData) -> Response:
    tag, problem = checked_tag(form.get("tag"))
    if problem:
        return _monitoring(request, 400, problem, tag)
    if _added(request, dashboard(request), tag):
        flash(request, f"Monitoring {tag}: jobs pushed with it from now on are kept.")
    else:
        flash(request, f"{tag} was monitored already.")
    return RedirectResponse("/monitoring", status_code=303)


@requires("operator")
def remove_page(request: Request) -> Response:
    tag = _monitored_tag(request)
    _removed(request, tag)
    flash(request, f"Stopped monitoring {tag}.")
    return RedirectResponse("/monitoring", status_code=303)


def tag_page(request: Request) -> Response:
    tag = _monitored_tag(request)
    listing, before = _tag_rows(request, tag)
    window_s = dashboard(request).settings.records.monitored_s
    return render(
        request, "monitoring_tag.html", tag=tag, listing=listing, before=before, window_s=window_s
    )


# --- API -------------------------------------------------------------------------------


def api_monitoring(request: Request) -> Response:
    """Monitored tags are few: no pages.
    ---
    summary: Monitored tags
    tags: [monitoring]
    responses:
      "200":
        description: Each monitored tag with how many jobs it keeps now.
        content:
          application/json:
            schema:
              type: object
              properties:
                data:
                  type: array
                  items:
                    type: object
                    properties: {tag: {type: string}, jobs: {type: integer}}
      "401": {$ref: "#/components/responses/Unauthorized"}
    """
    tags = dashboard(request).records.monitored()
    return ApiResponse({"data": [{"tag": tag, "jobs": jobs} for tag, jobs in tags.items()]})


@requires("operator")
async def api_monitor(request: Request) -> Response:
    """Jobs pushed with the tag from now on are kept for the monitored window.
    ---
    summary: Monitor a tag
    description: Needs the operator role; written to the audit log.
    tags: [monitoring]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [tag]
            properties: {tag: {type: string, minLength: 1, maxLength: 255}}
    responses:
      "201":
        description: Now monitored.
        content:
          application/json:
            schema:
              type: object
              properties: {tag: {type: string}, added: {type: boolean}}
      "200": {description: It was monitored already (added is false).}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "422":
        description: No tag, or one that is too long or holds control characters.
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Error"}
    """
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, 'The body is not JSON. Send {"tag": "..."}.') from None
    tag, problem = checked_tag(body.get("tag") if isinstance(body, dict) else None)
    if problem:
        raise HTTPException(422, problem)
    added = await run_in_threadpool(_added, request, dashboard(request), tag)
    return ApiResponse({"tag": tag, "added": added}, status_code=201 if added else 200)


@requires("operator")
def api_unmonitor(request: Request) -> Response:
    """The jobs the tag kept expire by themselves within the monitored window.
    ---
    summary: Stop monitoring a tag
    description: Needs the operator role; written to the audit log.
    tags: [monitoring]
    parameters:
      - {name: tag, in: path, required: true, schema: {type: string}}
    responses:
      "200":
        description: No longer monitored.
        content:
          application/json:
            schema: {type: object, properties: {removed: {type: string}}}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    tag = _monitored_tag(request)
    _removed(request, tag)
    return ApiResponse({"removed": tag})


def api_tag_jobs(request: Request) -> Response:
    """Every job pushed with the tag since it was monitored, whatever its status.
    ---
    summary: The jobs of a monitored tag
    tags: [monitoring]
    parameters:
      - {name: tag, in: path, required: true, schema: {type: string}}
      - name: before
        in: query
        description: The previous page's next_before.
        schema: {type: number}
      - {name: per_page, in: query, schema: {type: integer, minimum: 1, maximum: 200}}
    responses:
      "200":
        description: One page of jobs, newest first (the same fields as GET /api/jobs/{status}).
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {type: array, items: {type: object}}
                page: {$ref: "#/components/schemas/CursorPage"}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    listing, _ = _tag_rows(request, _monitored_tag(request))
    return by_cursor(listing.rows, listing.next_before)


routes = [
    Route("/monitoring", monitoring_page, methods=["GET"]),
    Route("/monitoring", add_page, methods=["POST"]),
    Route("/monitoring/{tag:path}/remove", remove_page, methods=["POST"]),
    Route("/monitoring/{tag:path}", tag_page, methods=["GET"]),
    Route("/api/monitoring", api_monitoring, methods=["GET"]),
    Route("/api/monitoring", api_monitor, methods=["POST"]),
    Route("/api/monitoring/{tag:path}", api_tag_jobs, methods=["GET"]),
    Route("/api/monitoring/{tag:path}", api_unmonitor, methods=["DELETE"]),
]
