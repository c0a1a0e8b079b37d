"""Admin pages: the audit log, and who may sign in (users and API tokens, read-only:
they are created and removed with the CLI)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dashboard.auth import requires
from dashboard.context import dashboard
from dashboard.paging import PER_PAGE, NumberedPage, numbered_page, whole_number
from dashboard.templating import render


@requires("admin")
def audit(request: Request) -> Response:
    log = dashboard(request).audit
    _, total = log.page(limit=0)  # the page asked for is checked against the count first
    page = numbered_page(request, total)
    entries, total = log.page(page.offset, page.per_page)
    return render(
        request,
        "audit.html",
        entries=[(entry, details(entry.detail)) for entry in entries],
        page=NumberedPage(page.number, page.per_page, total),
    )


def details(detail: object) -> list[tuple[str, str]]:
    """(key, value) lines of an entry's detail; values that are not text as compact JSON."""
    if not isinstance(detail, dict):
        return [("", _text(detail))] if detail else []
    return [(str(key), _text(value)) for key, value in sorted(detail.items(), key=str)]


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


@requires("admin")
def users(request: Request) -> Response:
    dash = dashboard(request)
    user_page, shown_users = _slice(request, "users_page", dash.users.list())
    token_page, shown_tokens = _slice(request, "tokens_page", dash.tokens.list())
    return render(
        request,
        "users.html",
        users=shown_users,
        users_page=user_page,
        tokens=shown_tokens,
        tokens_page=token_page,
        auth=dash.settings.dashboard.auth,
    )


def _slice(request: Request, name: str, rows: Sequence[Any]) -> tuple[NumberedPage, list[Any]]:
    """One page of a short list that the repository returns whole (people and scripts,
    added by hand with the CLI)."""
    page = NumberedPage(whole_number(request, name, 1), PER_PAGE, len(rows))
    page = NumberedPage(min(page.number, page.pages), PER_PAGE, len(rows))
    return page, list(rows[page.offset : page.offset + page.per_page])


routes = [
    Route("/audit", audit, methods=["GET"]),
    Route("/users", users, methods=["GET"]),
]
