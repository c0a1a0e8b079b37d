"""Pause, continue and terminate for masters and supervisors: one path for the page's
buttons and the JSON API, so both check the same roles and write the same audit entry."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

from dashboard.auth import require
from dashboard.context import dashboard

# The role each command needs; a supervisor cannot be terminated on its own (its master
# would start it again), so only masters take "terminate".
COMMANDS = {
    "master": {"pause": "operator", "continue": "operator", "terminate": "admin"},
    "supervisor": {"pause": "operator", "continue": "operator"},
}


def send_command(request: Request, kind: str, name: str, command: str) -> None:
    """Check the command, the role and that ``name`` is alive; send it and audit it.

    404 for an unknown command or a master / supervisor that is not running, 403 when the
    principal's role is too low. The command is queued: the target obeys at its next tick.
    """
    allowed = COMMANDS[kind]
    if command not in allowed:
        choices = ", ".join(allowed)
        raise HTTPException(404, f"There is no {kind} command {command!r}: use one of {choices}.")
    require(request, allowed[command])
    dash = dashboard(request)
    if name not in {beat.name for beat in dash.control.alive(kind)}:
        raise HTTPException(404, f"No {kind} named {name!r} is running.")
    dash.control.send(name, command)
    dash.record(request, f"{kind}.{command}", name)
