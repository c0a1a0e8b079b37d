"""Who is asking: a session user, an API token, a trusted proxy's user or the app's gate.

Every request but the public ones must resolve to a ``Principal``; the middleware turns
the rest away before any view runs, so no view can forget to check.
"""

from __future__ import annotations

import functools
import hmac
import importlib
import inspect
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.config_model import ConfigError
from core.dashboard_settings import AuthSettings
from dashboard.context import Dashboard
from dashboard.users import ROLES, role_allows

PUBLIC_PATHS = frozenset({"/login", "/health"})
PUBLIC_PREFIXES = ("/static/",)


def for_machines(path: str) -> bool:
    """The API and the Prometheus endpoint answer 401 / JSON errors, not the login page."""
    return path.startswith("/api/") or path == "/metrics"


@dataclass(frozen=True)
class Principal:
    name: str  # an email, a token's name, "local" when auth is off
    role: str
    via: str  # "session", "token", "proxy", "gate", "metrics-token" or "open"

    def may(self, role: str) -> bool:
        return role_allows(self.role, role)

    @property
    def uses_cookies(self) -> bool:
        """Requests a browser sends by itself (a forged form) carry cookies: those need CSRF."""
        return self.via in ("session", "proxy", "gate", "open")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def require(request: Request, role: str) -> None:
    """403 unless the principal has ``role`` (or a higher one)."""
    if not request.state.principal.may(role):
        raise HTTPException(403, f"This needs the {role} role.")


def requires(role: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator: ``require(request, role)`` before the view runs."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request: Request) -> Any:
                require(request, role)
                return await view(request)

            return async_view

        @functools.wraps(view)
        def sync_view(request: Request) -> Any:
            require(request, role)
            return view(request)

        return sync_view

    return decorate


class Identifier:
    """Finds the principal of a request; every source is tried in a fixed order."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.settings: AuthSettings = dashboard.settings.dashboard.auth
        self.gate = load_gate(self.settings.gate) if self.settings.gate else None
        self.proxies = [
            ipaddress.ip_network(p, strict=False) for p in self.settings.trusted_proxies
        ]

    def identify(self, request: Request) -> Principal | None:
        if not self.settings.enabled:
            return Principal("local", "admin", "open")
        bearer = _bearer(request)
        if bearer is not None:
            return self._token(request, bearer)
        return self._session(request) or self._proxy(request) or self._gate(request)

    def _token(self, request: Request, bearer: str) -> Principal | None:
        metrics_token = self.dashboard.settings.dashboard.metrics_token
        if (
            metrics_token is not None
            and request.url.path == "/metrics"
            and hmac.compare_digest(bearer.encode(), metrics_token.get_secret_value().encode())
        ):
            return Principal("prometheus", "viewer", "metrics-token")
        token = self.dashboard.tokens.verify(bearer)
        return Principal(token.name, token.role, "token") if token else None

    def _session(self, request: Request) -> Principal | None:
        user_id = request.session.get("user_id")
        if user_id is None:
            return None
        user = self.dashboard.users.get(user_id)  # a removed user is signed out at once
        if user is None:
            request.session.clear()
            return None
        return Principal(user.email, user.role, "session")

    def _proxy(self, request: Request) -> Principal | None:
        header = self.settings.proxy_header
        if not header or request.client is None:
            return None
        email = request.headers.get(header)
        if not email or not self._trusted(request.client.host):
            return None
        user = self.dashboard.users.by_email(email)
        return Principal(
            email.strip().lower(), user.role if user else self.settings.proxy_role, "proxy"
        )

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    def _gate(self, request: Request) -> Principal | None:
        if self.gate is None:
            return None
        allowed = self.gate(request)
        if allowed is True:
            return Principal("gate", "admin", "gate")
        if isinstance(allowed, str) and allowed in ROLES:
            return Principal("gate", allowed, "gate")
        return None


def load_gate(spec: str) -> Callable[[Request], object]:
    """The app's own check, named in the config (never in Redis): 'module:function'."""
    module_name, _, name = spec.partition(":")
    try:
        gate = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"[dashboard.auth] gate = {spec!r} cannot be loaded: {exc}") from None
    if not callable(gate):
        raise ConfigError(f"[dashboard.auth] gate = {spec!r} is not a function")
    return gate


def _bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, identifier: Identifier) -> None:
        self.app = app
        self.identifier = identifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        principal = None
        if not path.startswith(PUBLIC_PREFIXES):
            principal = await run_in_threadpool(self.identifier.identify, request)
        scope.setdefault("state", {})["principal"] = principal
        if principal is None and not is_public(path):
            await signed_out(request)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def signed_out(request: Request) -> Response:
    path = request.url.path
    if for_machines(path):
        return JSONResponse(
            {"error": "sign in, or send a token: Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    back = path + (f"?{request.url.query}" if request.url.query else "")
    login = f"/login?next={quote(back, safe='')}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": login})
    return RedirectResponse(login, status_code=303)
