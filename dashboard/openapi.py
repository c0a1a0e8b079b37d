"""The OpenAPI 3.1 document of the JSON API, built from the docstrings of the ``/api`` routes.

Starlette's ``SchemaGenerator`` reads the YAML after the last ``---`` of each endpoint's
docstring. Only routes under ``/api`` are read: a page's prose docstring could parse as
YAML by accident. Shared pieces (the error body, heartbeats, list pages and the usual
error responses) live under ``components`` so endpoints can ``$ref`` them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import yaml
from starlette.routing import BaseRoute
from starlette.schemas import EndpointInfo, SchemaGenerator

from dashboard.app import SESSION_COOKIE

API_PREFIX = "/api/"
PATH_PARAMETER = re.compile(r"{(\w+)}")

DESCRIPTION = (
    "The dashboard's data as JSON. Scripts send an API token as `Authorization: Bearer "
    "<token>` and need no CSRF token; a signed-in browser session works too, and then every "
    "request but GET needs the session's CSRF token in the `X-CSRF-Token` header. Lists "
    "answer `{data, page}`; errors answer `{error}` with a 4xx status."
)


def _error(description: str) -> dict[str, Any]:
    body = {"schema": {"$ref": "#/components/schemas/Error"}}
    return {"description": description, "content": {"application/json": body}}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer", "description": "An API token."},
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": SESSION_COOKIE,
            "description": "A signed-in browser; non-GET requests also need `X-CSRF-Token`.",
        },
    },
    "schemas": {
        "Error": _object(
            {"error": {"type": "string", "description": "What is wrong and how to fix it."}}
        ),
        "NumberedPage": _object(
            {name: {"type": "integer"} for name in ("number", "per_page", "total", "pages")}
        ),
        "CursorPage": _object(
            {
                "next_before": {
                    "type": ["integer", "null"],
                    "description": "Pass as `before` for the next page; null on the last one.",
                }
            }
        ),
        "RetryReport": _object(
            {
                "retried": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": {"type": "integer"},
                            "uuid": {"type": "string"},
                            "new_id": {"type": "string"},
                        }
                    ),
                },
                "unknown": {"type": "array", "items": {"type": "string"}},
                "refused": {
                    "type": "array",
                    "items": _object({"id": {"type": "integer"}, "reason": {"type": "string"}}),
                },
                "skipped": {
                    "type": "integer",
                    "description": "Matched the filter but were retried before.",
                },
            }
        ),
        "Heartbeat": _object(
            {
                "name": {"type": "string"},
                "kind": {"type": "string", "enum": ["master", "supervisor"]},
                "status": {"type": "string", "enum": ["running", "paused"]},
                "last_seen": {"type": "string", "format": "date-time"},
                "details": {"type": "object", "description": "What the process reports."},
            }
        ),
    },
    "responses": {
        "BadRequest": _error("A query parameter or the body is not valid."),
        "Unauthorized": _error("Not signed in, and no valid token was sent."),
        "Forbidden": _error("The role is too low, or the CSRF token is missing."),
        "NotFound": _error("Nothing by that name or id."),
        "CommandSent": {
            "description": "Queued: the master or supervisor obeys at its next tick.",
            "content": {
                "application/json": {
                    "schema": _object(
                        {key: {"type": "string"} for key in ("kind", "name", "command")}
                    )
                }
            },
        },
    },
}


class ApiSchemaGenerator(SchemaGenerator):
    """Starlette's generator, limited to ``/api`` and with every path parameter declared."""

    def get_endpoints(self, routes: list[BaseRoute]) -> list[EndpointInfo]:
        return [e for e in super().get_endpoints(routes) if e.path.startswith(API_PREFIX)]

    def parse_docstring(self, func_or_method: Callable[..., Any]) -> dict[str, Any]:
        if "---" not in (func_or_method.__doc__ or ""):
            return {}  # left out of the document, which the API's tests catch
        try:
            return super().parse_docstring(func_or_method)
        except yaml.YAMLError as exc:
            name = f"{func_or_method.__module__}.{func_or_method.__qualname__}"
            raise ValueError(
                f"the OpenAPI YAML in the docstring of {name} is invalid: {exc}"
            ) from None

    def get_schema(self, routes: list[BaseRoute]) -> dict[str, Any]:
        schema = super().get_schema(routes)
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                declare_path_parameters(path, operation)
        return schema


def declare_path_parameters(path: str, operation: dict[str, Any]) -> None:
    """OpenAPI requires each ``{name}`` of a path as a parameter; add the ones left out."""
    parameters = operation.setdefault("parameters", [])
    declared = {p.get("name") for p in parameters if isinstance(p, dict) and p.get("in") == "path"}
    for name in PATH_PARAMETER.findall(path):
        if name not in declared:
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )
    if not parameters:
        del operation["parameters"]


def openapi_document(routes: list[BaseRoute]) -> dict[str, Any]:
    base = {
        "openapi": "3.1.0",
        "info": {"title": "Skyline", "version": version("skyline"), "description": DESCRIPTION},
        "security": [{"bearer": []}, {"session": []}],
        "components": COMPONENTS,
        "paths": {},
    }
    return ApiSchemaGenerator(base).get_schema(routes)
