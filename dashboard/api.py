"""Conventions of the JSON API under ``/api``, shared by every view module that has one.

- Same auth as the pages, plus ``Authorization: Bearer <token>`` for scripts (tokens
  need no CSRF token; a browser session does, in the ``X-CSRF-Token`` header).
- Lists: ``{"data": [...], "page": {...}}`` where ``page`` holds ``number``, ``per_page``,
  ``total`` and ``pages`` (SQL lists) or ``next_before`` (Redis job lists).
- Errors: ``{"error": "what is wrong and how to fix it"}`` with a 4xx status.
- Each endpoint's docstring ends with ``---`` and the OpenAPI operation in YAML; the
  document at ``/api/openapi.json`` is built from them (see ``dashboard/views/api.py``).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any

from starlette.responses import JSONResponse

from dashboard.paging import NumberedPage


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ApiResponse(JSONResponse):
    """JSON that also carries dataclasses, datetimes (ISO 8601) and enums."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_plain, ensure_ascii=False).encode()


def numbered(items: list[Any], page: NumberedPage) -> ApiResponse:
    return ApiResponse(
        {
            "data": items,
            "page": {
                "number": page.number,
                "per_page": page.per_page,
                "total": page.total,
                "pages": page.pages,
            },
        }
    )


def by_cursor(items: list[Any], next_before: int | None) -> ApiResponse:
    return ApiResponse({"data": items, "page": {"next_before": next_before}})
