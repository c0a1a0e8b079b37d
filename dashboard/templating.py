"""The Jinja2 environment: autoescaping on, strict about undefined names, and the
filters and globals every template may use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from dashboard import humanize
from dashboard.csrf import csrf_token
from dashboard.flash import take_flashes

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "templates"


def _common(request: Request) -> dict[str, Any]:
    principal = getattr(request.state, "principal", None)
    return {
        "principal": principal,
        "csrf_token": csrf_token(request),
        "refresh_s": request.app.state.dashboard.settings.dashboard.refresh_s,
        "path": request.url.path,
        "flashes": take_flashes(request),
    }


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(
    compact=humanize.compact,
    duration_ms=humanize.duration_ms,
    ago=humanize.ago,
    exact=humanize.exact,
    pretty_json=_pretty_json,
)
templates = Jinja2Templates(env=environment, context_processors=[_common])


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, context, status_code=status_code)
