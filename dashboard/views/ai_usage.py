"""AI usage: what the Claude workload asked, spent and met (the figures, charts, headroom,
slowest requests and a page of recent ones), a request's detail, and the operator's cancel.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.claude.records import UNFINISHED, ClaudeRequestRecord, Status
from dashboard.claude_requests import (
    cancel_request,
    claude_services,
    durations,
    found_request,
    owner_scope,
    status_filter,
)
from dashboard.claude_usage import read_usage
from dashboard.context import dashboard
from dashboard.flash import flash
from dashboard.paging import NumberedPage, numbered_page
from dashboard.templating import render


@dataclass(frozen=True)
class Recent:
    """A page of requests, newest first, with the filters that chose them."""

    records: list[ClaudeRequestRecord]
    page: NumberedPage
    status: Status | None
    batch_id: str | None
    per_page: str  # as asked, kept in the page links
    ever: int  # requests at all: none means the workload is not on

    def url(self, number: int) -> str:
        params = {
            "status": self.status.value if self.status else "",
            "batch": self.batch_id,
            "per_page": self.per_page,
        }
        kept = {name: value for name, value in params.items() if value}
        return "/ai?" + urlencode({**kept, "page": number})


def read_recent(request: Request) -> Recent:
    store, owner = claude_services(request).requests, owner_scope(request)
    status, batch_id = status_filter(request), request.query_params.get("batch") or None
    page = numbered_page(request, store.count(owner=owner, status=status, batch_id=batch_id))
    records = store.list(
        owner=owner, status=status, batch_id=batch_id, limit=page.per_page, offset=page.offset
    )
    ever = page.total if status is None and batch_id is None else store.count(owner=owner)
    per_page = request.query_params.get("per_page", "")
    return Recent(records, page, status, batch_id, per_page, ever)


def request_path(record: ClaudeRequestRecord) -> str:
    return f"/ai/requests/{quote(record.id, safe='')}"


def usage_page(request: Request) -> Response:
    recent = read_recent(request)
    usage = read_usage(dashboard(request), owner_scope(request)) if recent.ever else None
    return render(
        request, "ai_usage.html", usage=usage, recent=recent, statuses=[s.value for s in Status]
    )


def request_page(request: Request) -> Response:
    record = found_request(request)
    context = dict(record=record, durations=durations(record), unfinished=UNFINISHED)
    return render(request, "claude_request.html", **context)


def cancel_form(request: Request) -> Response:
    record = found_request(request)
    if cancel_request(request, record) is None:
        flash(request, f"Request {record.id} had finished already: nothing to cancel.")
    else:
        flash(request, f"Cancelled request {record.id}.")
    return RedirectResponse(request_path(record), status_code=303)


routes = [
    Route("/ai", usage_page, methods=["GET"]),
    Route("/ai/requests/{id}", request_page, methods=["GET"]),
    Route("/ai/requests/{id}/cancel", cancel_form, methods=["POST"]),
]
