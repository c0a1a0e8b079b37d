"""``/metrics`` for Prometheus: the text exposition, read fresh at every scrape.

Prometheus signs in with the ``[dashboard] metrics_token`` (which opens this path
only), or with any user's session or API token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.prometheus import CONTENT_TYPE_LATEST, render_metrics
from dashboard.auth import requires
from dashboard.context import dashboard


@requires("viewer")
def metrics(request: Request) -> Response:
    return Response(render_metrics(dashboard(request).runtime), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
