"""Signing in and out, and the health check for load balancers."""

from __future__ import annotations

import secrets

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from dashboard.context import dashboard
from dashboard.humanize import duration_ms
from dashboard.templating import render
from dashboard.users import UserRecord


def login_page(request: Request) -> Response:
    return render(
        request, "login.html", next=safe_next(request.query_params.get("next")), error=None
    )


async def login(request: Request) -> Response:
    form = await request.form()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")))
    dash = dashboard(request)
    address = request.client.host if request.client else "unknown"
    wait_s = dash.login_throttle.wait_s(email, address)
    if wait_s:
        error = f"Too many failed sign-ins. Try again in {duration_ms(wait_s * 1000)}."
        return render(request, "login.html", 429, next=next_path, error=error)
    user = await _authenticate(request, email, password)
    if user is None:
        dash.login_throttle.failed(email, address)
        error = "Wrong email or password."
        return render(request, "login.html", 401, next=next_path, error=error)
    dash.login_throttle.succeeded(email)
    request.session.clear()  # a new session: nothing from before sign-in carries over
    request.session.update(user_id=user.id, csrf=secrets.token_urlsafe(32))
    return RedirectResponse(next_path, status_code=303)


async def _authenticate(request: Request, email: str, password: str) -> UserRecord | None:
    """argon2 takes tens of milliseconds on purpose: off the event loop."""
    return await run_in_threadpool(dashboard(request).users.authenticate, email, password)


def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def health(request: Request) -> Response:
    """200 when Redis and SQL answer, 503 otherwise; says nothing else."""
    dash = dashboard(request)
    try:
        dash.client.ping()
        with dash.runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect to another one."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/health", health, methods=["GET"]),
]
