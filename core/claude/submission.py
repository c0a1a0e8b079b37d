"""Submitting a Claude request: check it, store it, queue its job.

The job is queued after the record is committed, so a worker never looks for a request
that is not there yet.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from core.claude.job import request_job
from core.claude.records import NewRequest
from core.claude.services import ClaudeServices, default_services
from core.claude.settings import PRIORITIES, ClaudeSettings

MAX_PROMPT_CHARS = 50_000
MAX_TOKENS = 200_000
MAX_OWNER_CHARS = 255
MAX_URL_CHARS = 2048
MAX_BATCH_ID_CHARS = 36
ROLES = ("user", "assistant")


class RequestValidationError(ValueError):
    """A request that cannot be sent; ``errors`` maps each bad field to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in errors.items()))


def submit(
    prompt: str | None = None,
    *,
    messages: list[dict[str, Any]] | None = None,
    model: str | None = None,
    system: str | None = None,
    max_tokens: int = 1024,
    temperature: float = 1.0,
    owner: str = "",
    priority: str = "normal",
    webhook_url: str | None = None,
    batch_id: str | None = None,
    services: ClaudeServices | None = None,
) -> str:
    """Queue a Claude request; returns its id. Raises RequestValidationError."""
    services = services or default_services()
    request = validate(
        services.claude,
        prompt=prompt,
        messages=messages,
        model=model,
        system=system,
        max_tokens=max_tokens,
        temperature=temperature,
        owner=owner,
        priority=priority,
        webhook_url=webhook_url,
        batch_id=batch_id,
    )
    record = services.requests.create(request)
    try:
        services.dispatcher.dispatch([request_job(record.id, record.priority, services.claude)])
    except Exception as exc:
        services.requests.failed(record.id, f"could not queue the request: {exc}")
        raise
    return record.id


def validate(
    settings: ClaudeSettings,
    *,
    prompt: Any = None,
    messages: Any = None,
    model: Any = None,
    system: Any = None,
    max_tokens: Any = 1024,
    temperature: Any = 1.0,
    owner: Any = "",
    priority: Any = "normal",
    webhook_url: Any = None,
    batch_id: Any = None,
) -> NewRequest:
    """The request as it will be stored, or RequestValidationError naming every bad field.

    Takes anything (it also checks JSON from the HTTP API); a plain prompt becomes one
    user message.
    """
    model = settings.default_model if model is None else model
    found = [
        _content_problem(prompt, messages),
        ("model", _model_problem(model, settings)),
        ("system", _text_problem(system, "system", required=False)),
        ("max_tokens", _number_problem(max_tokens, 1, MAX_TOKENS, whole=True)),
        ("temperature", _number_problem(temperature, 0, 1, whole=False)),
        ("owner", _length_problem(owner, MAX_OWNER_CHARS, optional=False)),
        ("priority", None if priority in PRIORITIES else f"must be one of {', '.join(PRIORITIES)}"),
        ("webhook_url", _webhook_problem(webhook_url, settings.webhook_hosts)),
        ("batch_id", _length_problem(batch_id, MAX_BATCH_ID_CHARS, optional=True)),
    ]
    errors = {name: problem for name, problem in found if problem}
    if errors:
        raise RequestValidationError(errors)
    return NewRequest(
        model=model,
        messages=messages if prompt is None else [{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=float(temperature),
        system=system,
        owner=owner,
        priority=priority,
        webhook_url=webhook_url,
        batch_id=batch_id,
    )


def _content_problem(prompt: Any, messages: Any) -> tuple[str, str | None]:
    if prompt is not None and messages is not None:
        return "prompt", "give a prompt or messages, not both"
    if messages is None:
        return "prompt", _text_problem(prompt, "the prompt", required=True)
    return "messages", _messages_problem(messages)


def _text_problem(value: Any, what: str, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"{what} is required" if required else None
    if not isinstance(value, str):
        return f"{what} must be text"
    if len(value) > MAX_PROMPT_CHARS:
        return f"{what} is {len(value):,} characters; at most {MAX_PROMPT_CHARS:,} are allowed"
    return None


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "must be a non-empty list of {role, content} messages"
    chars = 0
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"message {number} needs a role of user or assistant"
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            chars += len(content)
        elif isinstance(content, list) and content and all(_is_block(b) for b in content):
            chars += sum(len(b.get("text", "")) for b in content if isinstance(b.get("text"), str))
        else:
            return f"message {number} needs content: text, or a list of content blocks"
    if chars > MAX_PROMPT_CHARS:
        return f"the messages hold {chars:,} characters; at most {MAX_PROMPT_CHARS:,} are allowed"
    return None


def _is_block(block: Any) -> bool:
    return isinstance(block, dict) and isinstance(block.get("type"), str)


def _model_problem(model: Any, settings: ClaudeSettings) -> str | None:
    if isinstance(model, str) and model in settings.models:
        return None
    return f"must be one of the allowed models: {', '.join(sorted(settings.models))}"


def _number_problem(value: Any, least: float, most: float, *, whole: bool) -> str | None:
    kinds = (int,) if whole else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not least <= value <= most:
        kind = "a whole number" if whole else "a number"
        return f"must be {kind} from {least:,} to {most:,}"
    return None


def _length_problem(value: Any, most: int, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > most:
        return f"must be text of at most {most} characters"
    return None


def _webhook_problem(url: Any, allowed_hosts: list[str]) -> str | None:
    if url is None:
        return None
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
        return f"must be an http(s) URL of at most {MAX_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http:// or https:// URL with a host"
    if allowed_hosts and host.lower() not in allowed_hosts:
        return f"host {host!r} is not allowed (allowed: {', '.join(allowed_hosts)})"
    return None
