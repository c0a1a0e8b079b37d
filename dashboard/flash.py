"""One-time messages shown on the next page, after a form's redirect."""

from __future__ import annotations

from starlette.requests import Request


def flash(request: Request, message: str) -> None:
    request.session.setdefault("flash", []).append(message)


def take_flashes(request: Request) -> list[str]:
    return request.session.pop("flash", []) if "session" in request.scope else []
