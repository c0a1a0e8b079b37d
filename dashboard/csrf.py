"""CSRF protection for every state-changing request, in one place.

A request a browser sends by itself carries the session cookie, so it must also carry
the session's CSRF token: in the ``X-CSRF-Token`` header (htmx sends it) or in a
``csrf_token`` form field (plain forms, with JavaScript off). A request with an
``Origin`` of another site is refused outright. Token-authenticated API calls carry no
cookie a forged page could use, so they need neither.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = "x-csrf-token"
FIELD = "csrf_token"
MAX_FORM_BYTES = 1024 * 1024
REFUSED = "The form expired or came from another site: reload the page and try again."


def csrf_token(request: Request) -> str:
    """The session's token, made on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


class CsrfMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal = scope.get("state", {}).get("principal")
        if principal is not None and not principal.uses_cookies:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None or not _allowed(request, body):
            await PlainTextResponse(REFUSED, status_code=403)(scope, receive, send)
            return
        await self.app(scope, _replay(body), send)


def _allowed(request: Request, body: bytes) -> bool:
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return False
    expected = request.session.get("csrf")
    sent = request.headers.get(HEADER) or _form_field(request, body)
    return bool(expected and sent) and hmac.compare_digest(sent.encode(), expected.encode())


def _form_field(request: Request, body: bytes) -> str | None:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    values = parse_qs(body.decode("latin-1")).get(FIELD)
    return values[0] if values else None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when it is larger than any form of the dashboard."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
