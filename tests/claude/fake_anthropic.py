"""A fake Anthropic API on loopback, so tests drive the real SDK over real HTTP.

It speaks ``POST /v1/messages`` with the real API's bodies and headers (``request-id``,
``anthropic-ratelimit-*``, ``retry-after``) and error shapes. A test scripts what comes
next (``fake.script(rate_limited(2), success("hi"))``); with nothing scripted it answers
successfully. Every request it receives is kept in ``fake.received``, with the time it
arrived.

The Message Batches endpoints live in ``fake.message_batches`` (see
``tests.claude.fake_message_batches``); they answer with the next scripted reply only
when it is an error, so scripts meant for ``/v1/messages`` stay in place.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.claude.fake_message_batches import MessageBatches
from tests.conftest import wait_until

DEFAULT_TEXT = "Hello from the fake Claude."
WINDOW_S = 60
CHARS_PER_TOKEN = 4
START_TIMEOUT_S = 10


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``status`` 200 builds a message from the request."""

    status: int = 200
    text: str = DEFAULT_TEXT
    stop_reason: str = "end_turn"
    input_tokens: int | None = None  # None: counted from the request's text
    output_tokens: int | None = None  # None: counted from ``text``
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    error_type: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def success(text: str = DEFAULT_TEXT, **usage: Any) -> Reply:
    return Reply(text=text, **usage)


def rate_limited(retry_after: float | None = 0) -> Reply:
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    message = "Number of request tokens has exceeded your per-minute rate limit"
    return Reply(429, error_type="rate_limit_error", message=message, headers=headers)


def overloaded(retry_after: float | None = None) -> Reply:
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return Reply(529, error_type="overloaded_error", message="Overloaded", headers=headers)


def server_error() -> Reply:
    return Reply(500, error_type="api_error", message="Internal server error")


def bad_request(message: str = "max_tokens: must be less than or equal to 64000") -> Reply:
    return Reply(400, error_type="invalid_request_error", message=message)


def unauthorized() -> Reply:
    return Reply(401, error_type="authentication_error", message="invalid x-api-key")


def slow(delay_s: float, reply: Reply | None = None) -> Reply:
    return Reply(**{**(reply or success()).__dict__, "delay_s": delay_s})


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)  # when it arrived (s since the epoch)


@dataclass
class Limits:
    """What the rate-limit headers announce, per minute."""

    requests: int = 50
    input_tokens: int = 30_000
    output_tokens: int = 8_000


class FakeAnthropic:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.received: list[Received] = []
        self.url = ""
        self._replies: deque[Reply] = deque()
        self._window = (0, {"requests": 0, "input-tokens": 0, "output-tokens": 0})
        self.message_batches = MessageBatches(self)
        self.routes: list[Route] = [
            Route("/v1/messages", self.messages, methods=["POST"]),
            *self.message_batches.routes,
        ]
        self.app: Starlette | None = None

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; then successes again."""
        self._replies.extend(replies)

    def bodies(self, path: str = "/v1/messages") -> list[Any]:
        return [r.body for r in self.received if r.path == path]

    async def messages(self, request: Request) -> JSONResponse:
        body = await self.receive(request)
        if not _has_key(request):
            return self._error(unauthorized())
        reply = self._replies.popleft() if self._replies else success()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            return self._error(reply)
        message = self.message_for(body, reply)
        self._use(1, message["usage"]["input_tokens"], message["usage"]["output_tokens"])
        return JSONResponse(message, headers={**self.headers(), **reply.headers})

    async def receive(self, request: Request) -> Any:
        """Keep the request in ``received``; its JSON body (None when it has none)."""
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.received.append(
            Received(request.method, request.url.path, dict(request.headers), body)
        )
        return body

    def refusal(self, request: Request) -> JSONResponse | None:
        """A 401 without a key, else the next scripted reply if it is an error; else None."""
        if not _has_key(request):
            return self._error(unauthorized())
        if self._replies and self._replies[0].status != 200:
            return self._error(self._replies.popleft())
        return None

    def default_reply(self) -> Reply:
        return success()

    def message_for(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        """The message the API would answer ``body`` (a Messages API request) with."""
        return _message(body, reply)

    def error(self, status: int, error_type: str, message: str) -> JSONResponse:
        return self._error(Reply(status, error_type=error_type, message=message))

    def _error(self, reply: Reply) -> JSONResponse:
        if reply.status == 429:
            self._use(self.limits.requests, 0, 0)  # the limit is spent, as the 429 says
        headers = {**self.headers(), **reply.headers}
        error = {"type": reply.error_type, "message": reply.message}
        body = {"type": "error", "error": error, "request_id": headers["request-id"]}
        return JSONResponse(body, status_code=reply.status, headers=headers)

    def headers(self) -> dict[str, str]:
        """``request-id`` and the ``anthropic-ratelimit-*`` headers for the current minute."""
        start, used = self._current_window()
        reset = datetime.fromtimestamp(start + WINDOW_S, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {"request-id": f"req_{uuid.uuid4().hex[:24]}"}
        limits = {
            "requests": self.limits.requests,
            "input-tokens": self.limits.input_tokens,
            "output-tokens": self.limits.output_tokens,
        }
        for name, limit in limits.items():
            headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{name}-remaining"] = str(max(limit - used[name], 0))
            headers[f"anthropic-ratelimit-{name}-reset"] = reset
        return headers

    def _current_window(self) -> tuple[int, dict[str, int]]:
        start = int(time.time()) // WINDOW_S * WINDOW_S
        if self._window[0] != start:
            self._window = (start, {"requests": 0, "input-tokens": 0, "output-tokens": 0})
        return self._window

    def _use(self, requests: int, input_tokens: int, output_tokens: int) -> None:
        _, used = self._current_window()
        used["requests"] += requests
        used["input-tokens"] += input_tokens
        used["output-tokens"] += output_tokens


def _message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    input_tokens = reply.input_tokens
    output_tokens = reply.output_tokens
    usage = {
        "input_tokens": _tokens(_request_text(body)) if input_tokens is None else input_tokens,
        "output_tokens": _tokens(reply.text) if output_tokens is None else output_tokens,
        "cache_creation_input_tokens": reply.cache_creation_input_tokens,
        "cache_read_input_tokens": reply.cache_read_input_tokens,
        "service_tier": "standard",
    }
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _has_key(request: Request) -> bool:
    return bool(request.headers.get("x-api-key") or request.headers.get("authorization"))


def _request_text(body: dict[str, Any]) -> str:
    parts = [body.get("system") or ""]
    for message in body.get("messages", []):
        content = message.get("content")
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "".join(parts)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


@contextmanager
def serve(fake: FakeAnthropic) -> Iterator[FakeAnthropic]:
    """Run ``fake`` with uvicorn on 127.0.0.1 (a free port) in a thread; ``fake.url`` is set."""
    fake.app = Starlette(routes=fake.routes)
    config = uvicorn.Config(
        fake.app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-anthropic", daemon=True)
    thread.start()
    wait_until(
        lambda: server.started or not thread.is_alive(),
        START_TIMEOUT_S,
        message="the fake Anthropic server did not start",
    )
    if not server.started:
        raise RuntimeError("the fake Anthropic server stopped at start-up")
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=5)
