"""The overview (status, figures, workload, supervisors) and the master and supervisor
controls: pause, continue, terminate."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.context import dashboard
from dashboard.controls import send_command
from dashboard.flash import flash
from dashboard.overview import read_overview
from dashboard.templating import render

PAST_TENSE = {"pause": "Paused", "continue": "Continued", "terminate": "Asked to terminate"}


def overview(request: Request) -> Response:
    return render(request, "overview.html", overview=read_overview(dashboard(request)))


def overview_live(request: Request) -> Response:
    """The live part of the overview, which htmx swaps in every few seconds."""
    return render(
        request, "partials/overview_live.html", overview=read_overview(dashboard(request))
    )


def master_command(request: Request) -> Response:
    return _command(request, "master")


def supervisor_command(request: Request) -> Response:
    return _command(request, "supervisor")


def _command(request: Request, kind: str) -> Response:
    name, command = request.path_params["name"], request.path_params["command"]
    send_command(request, kind, name, command)
    flash(request, f"{PAST_TENSE[command]} {kind} {name}.")
    return RedirectResponse("/", status_code=303)


routes = [
    Route("/", overview, methods=["GET"]),
    Route("/partials/overview", overview_live, methods=["GET"]),
    Route("/masters/{name}/{command}", master_command, methods=["POST"]),
    Route("/supervisors/{name}/{command}", supervisor_command, methods=["POST"]),
]
