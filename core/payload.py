"""The payload: the JSON document a queue holds for one job.

A payload is an envelope around a signed body::

    {"body": "<JSON string>", "sig": "<HMAC>", "attempts": 0, "exceptions": 0,
     "lost": 0, "lease": null, "available_at": <ms>}

The body (job name, arguments, options) is signed with the application's
secret and never changes. The envelope fields are the ones the Lua scripts and
the worker update on every attempt, so they stay outside the signature.
Verification happens before anything in the body is looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEX_CHARS = 32
REQUIRED_BODY_FIELDS = ("id", "job", "queue", "connection")
# Made once: json.dumps builds a new encoder on every call that passes it an option.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class PayloadError(ValueError):
    """A payload that must not be run: malformed, unsigned or badly signed."""


def now_ms() -> int:
    return int(time.time() * 1000)


def new_job_id() -> str:
    return str(uuid.uuid4())


def sign(body: str, key: str) -> str:
    digest = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    return digest[:SIGNATURE_HEX_CHARS]


def _signed_by_any(body: str, sig: str, keys: list[str]) -> bool:
    given = sig.encode()
    return any(hmac.compare_digest(sign(body, key).encode(), given) for key in keys)


@dataclass
class Payload:
    """One job's payload as a worker holds it; ``raw`` is the exact string in Redis."""

    raw: str
    body: dict[str, Any]
    body_json: str
    sig: str
    attempts: int = 0
    exceptions: int = 0
    lost: int = 0
    lease: str | None = None
    available_at: int = 0
    reserved_at: int = 0

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def job_name(self) -> str:
        return self.body["job"]

    @property
    def queue(self) -> str:
        return self.body["queue"]

    @property
    def connection(self) -> str:
        return self.body["connection"]

    @property
    def tried(self) -> int:
        """Attempts that count against ``tries``: a lost worker is not the job's fault."""
        return self.attempts - self.lost

    def option(self, name: str, default: Any = None) -> Any:
        value = self.body.get("options", {}).get(name)
        return default if value is None else value

    def attempts_kept(self, counts: bool) -> int:
        return self.attempts if counts else max(self.attempts - 1, 0)

    def released(self, available_at: int, *, exception: bool, counts: bool = True) -> str:
        """The envelope to queue again after this attempt, keeping the signed body.

        ``counts=False`` gives the attempt back: the job was held back, not tried.
        """
        return envelope(
            self.body_json,
            self.sig,
            attempts=self.attempts_kept(counts),
            exceptions=self.exceptions + (1 if exception else 0),
            lost=self.lost,
            available_at=available_at,
        )


def envelope(
    body_json: str,
    sig: str,
    *,
    attempts: int = 0,
    exceptions: int = 0,
    lost: int = 0,
    available_at: int = 0,
) -> str:
    return COMPACT_JSON.encode(
        {
            "body": body_json,
            "sig": sig,
            "attempts": attempts,
            "exceptions": exceptions,
            "lost": lost,
            "lease": None,
            "available_at": available_at,
        }
    )


def build(body: dict[str, Any], key: str, *, available_at: int) -> str:
    """A new signed payload string for ``body``."""
    body_json = COMPACT_JSON.encode(body)
    return envelope(body_json, sign(body_json, key), available_at=available_at)


def as_text(raw: str | bytes) -> str:
    """Text any SQL database can store; a real payload is JSON and holds no NUL."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return text.replace("\x00", "\ufffd")


def parse(raw: str | bytes, keys: list[str]) -> Payload:
    """Check and open a payload. Raises PayloadError before anything in it is trusted."""
    raw = as_text(raw)
    outer = _load_object(raw, "payload")
    body_json, sig = outer.get("body"), outer.get("sig")
    if not isinstance(body_json, str) or not isinstance(sig, str):
        raise PayloadError("payload is not a Skyline envelope (no signed body): refusing to run it")
    if not _signed_by_any(body_json, sig, keys):
        raise PayloadError(
            "payload signature does not match any configured secret: it was not pushed by "
            "this application (or SKYLINE_SECRET differs between producer and worker)"
        )
    body = _load_object(body_json, "payload body")
    missing = [name for name in REQUIRED_BODY_FIELDS if not isinstance(body.get(name), str)]
    if missing:
        raise PayloadError(f"payload body lacks {', '.join(missing)}")
    return Payload(
        raw=raw,
        body=body,
        body_json=body_json,
        sig=sig,
        attempts=_int(outer, "attempts"),
        exceptions=_int(outer, "exceptions"),
        lost=_int(outer, "lost"),
        lease=outer.get("lease") if isinstance(outer.get("lease"), str) else None,
        available_at=_int(outer, "available_at"),
        reserved_at=_int(outer, "reserved_at"),
    )


def peek(raw: str | bytes) -> dict[str, Any]:
    """Best-effort, unverified look at a payload's body, for naming it in the failed store."""
    try:
        outer = json.loads(raw)
        body = json.loads(outer["body"])
        return body if isinstance(body, dict) else {}
    except (ValueError, TypeError, KeyError, RecursionError):
        return {}


def _load_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise PayloadError(f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is JSON but not an object")
    return value


def _int(outer: dict[str, Any], name: str) -> int:
    value = outer.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"envelope field {name} is not a number: {value!r}")
    return int(value)
