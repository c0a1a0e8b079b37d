"""Query parameters shared by lists: the page number and the page size, checked.

SQL lists (failed jobs, batches, the audit log) are paged by number; Redis job lists
by a score cursor (``before``), which ``core.record_pages`` returns with each page.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request

PER_PAGE = 50
MAX_PER_PAGE = 200


@dataclass(frozen=True)
class NumberedPage:
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page


def whole_number(request: Request, name: str, default: int, most: int | None = None) -> int:
    """A positive whole-number query parameter; 400 with the reason when it is not one."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise HTTPException(400, f"{name} must be a whole number of 1 or more, not {raw!r}.")
    return min(int(raw), most) if most else int(raw)


def numbered_page(request: Request, total: int) -> NumberedPage:
    per_page = whole_number(request, "per_page", PER_PAGE, MAX_PER_PAGE)
    page = NumberedPage(whole_number(request, "page", 1), per_page, total)
    return page if page.number <= page.pages else NumberedPage(page.pages, per_page, total)


def cursor(request: Request) -> int | None:
    """The ``before`` score of a Redis job list (a whole number); 400 when it is not one."""
    raw = request.query_params.get("before")
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise HTTPException(
            400, f"before must be a whole number (a page's next_before), not {raw!r}."
        ) from None
