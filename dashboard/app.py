"""The dashboard application: middleware in a fixed order, then every view module's routes.

Order matters: sessions are read before auth; auth resolves the principal (and turns
away signed-out requests) before CSRF checks a state-changing request; security headers
wrap everything, error pages included.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import pkgutil

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from core.config_model import ConfigError
from core.runtime import Runtime
from dashboard import views
from dashboard.assets import HTMX_FILE
from dashboard.auth import AuthMiddleware, Identifier, for_machines
from dashboard.context import Dashboard
from dashboard.csrf import CsrfMiddleware
from dashboard.headers import SecurityHeadersMiddleware
from dashboard.templating import ROOT, render

STATIC_DIR = ROOT / "static"
SESSION_COOKIE = "skyline_session"

log = logging.getLogger("skyline.dashboard")


def create_app(runtime: Runtime) -> Starlette:
    settings = runtime.settings.dashboard
    check_exposure(settings.host, settings.auth.enabled)
    dashboard = Dashboard(runtime)
    if not HTMX_FILE.exists():
        log.warning(
            "htmx is not installed, so pages will not refresh by themselves: "
            "run `python -m dashboard.assets` (make does it)"
        )
    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(
            SessionMiddleware,
            secret_key=dashboard.session_secret,
            session_cookie=SESSION_COOKIE,
            max_age=int(settings.auth.session_hours * 3600),
            same_site="lax",
            https_only=settings.auth.secure_cookies,
        ),
        Middleware(AuthMiddleware, identifier=Identifier(dashboard)),
        Middleware(CsrfMiddleware),
    ]
    app = Starlette(
        routes=view_routes(),
        middleware=middleware,
        exception_handlers={HTTPException: error_page},
    )
    app.state.dashboard = dashboard
    return app


def view_routes() -> list[BaseRoute]:
    """Every module in ``dashboard.views`` contributes its ``routes``."""
    routes: list[BaseRoute] = []
    for module in sorted(m.name for m in pkgutil.iter_modules(views.__path__)):
        routes.extend(importlib.import_module(f"dashboard.views.{module}").routes)
    routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    return routes


def check_exposure(host: str, auth_enabled: bool) -> None:
    """Refuse to serve job data to a network without auth."""
    if auth_enabled:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"[dashboard] host = {host!r} with [dashboard.auth] enabled = false would serve job "
            "data to the network without sign-in: bind to 127.0.0.1 or enable auth"
        )


async def error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if for_machines(request.url.path):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
    return render(request, "error.html", status_code=exc.status_code, error=exc)
