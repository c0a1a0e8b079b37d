"""An application's own dashboard check, for the gate tests: the ``X-Test-Gate`` header
says yes (admin), a role's name, or anything else (no)."""

from __future__ import annotations

from starlette.requests import Request

ROLE_HEADER = "X-Test-Gate"


def gate(request: Request) -> bool | str:
    answer = request.headers.get(ROLE_HEADER, "")
    if answer == "yes":
        return True
    if answer in ("viewer", "operator", "admin"):
        return answer
    return False
