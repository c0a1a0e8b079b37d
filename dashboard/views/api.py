"""The API's own document (``/api/openapi.json``), the overview as JSON, and the master
and supervisor controls for scripts. The conventions are in ``dashboard/api.py``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from core.control import Heartbeat
from dashboard.api import ApiResponse
from dashboard.auth import requires
from dashboard.context import dashboard
from dashboard.controls import send_command
from dashboard.openapi import openapi_document
from dashboard.overview import Overview, read_overview


def heartbeat(beat: Heartbeat) -> dict[str, Any]:
    return {
        "name": beat.name,
        "kind": beat.kind,
        "status": beat.status,
        "last_seen": datetime.fromtimestamp(beat.last_seen, UTC),
        "details": beat.details,
    }


def overview_body(overview: Overview) -> dict[str, Any]:
    figures = overview.figures
    return {
        "status": overview.status,
        "processes": overview.processes,
        "figures": {
            "jobs_per_minute": figures.jobs_per_minute,
            "jobs_past_hour": figures.jobs_past_hour,
            "failed_past_7_days": figures.failed_past_7_days,
            "max_wait_queue": figures.max_wait_queue,
            "max_runtime_queue": figures.max_runtime_queue,
            "max_throughput_queue": figures.max_throughput_queue,
        },
        "queues": [
            {**asdict(queue), "processes": overview.processes_by_queue.get(queue.name, 0)}
            for queue in figures.queues
        ],
        "masters": [heartbeat(beat) for beat in overview.masters],
        "supervisors": [heartbeat(beat) for beat in overview.supervisors],
    }


@requires("viewer")
def openapi(request: Request) -> ApiResponse:
    """
    ---
    summary: This document
    description: The OpenAPI 3.1 document of every endpoint under /api.
    tags: [api]
    responses:
      "200":
        description: The document.
        content:
          application/json:
            schema: {type: object}
      "401": {$ref: "#/components/responses/Unauthorized"}
    """
    return ApiResponse(openapi_document(request.app.routes))


@requires("viewer")
def overview(request: Request) -> ApiResponse:
    """
    ---
    summary: The overview
    description: >
      Status (active, paused or inactive), live figures, each queue's workload with the
      processes serving it, and the masters and supervisors that sent a heartbeat lately.
    tags: [overview]
    responses:
      "200":
        description: The overview.
        content:
          application/json:
            schema:
              type: object
              required: [status, processes, figures, queues, masters, supervisors]
              properties:
                status: {type: string, enum: [active, paused, inactive]}
                processes: {type: integer}
                figures:
                  type: object
                  properties:
                    jobs_per_minute: {type: number}
                    jobs_past_hour: {type: integer}
                    failed_past_7_days: {type: integer}
                    max_wait_queue: {type: [string, "null"]}
                    max_runtime_queue: {type: [string, "null"]}
                    max_throughput_queue: {type: [string, "null"]}
                queues:
                  type: array
                  items:
                    type: object
                    properties:
                      name: {type: string}
                      ready: {type: integer}
                      processes: {type: integer}
                      oldest_wait_ms: {type: number}
                      wait_p50_ms: {type: number}
                      wait_p95_ms: {type: number}
                      runtime_ms_average: {type: number}
                      jobs_past_hour: {type: integer}
                masters: {type: array, items: {$ref: "#/components/schemas/Heartbeat"}}
                supervisors: {type: array, items: {$ref: "#/components/schemas/Heartbeat"}}
      "401": {$ref: "#/components/responses/Unauthorized"}
    """
    return ApiResponse(overview_body(read_overview(dashboard(request))))


@requires("viewer")
def masters(request: Request) -> ApiResponse:
    """Heartbeats are few (one per host) and expire by themselves: no pages.
    ---
    summary: Running masters
    tags: [controls]
    responses:
      "200":
        description: Every master that sent a heartbeat lately, by name.
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {type: array, items: {$ref: "#/components/schemas/Heartbeat"}}
      "401": {$ref: "#/components/responses/Unauthorized"}
    """
    return ApiResponse({"data": [heartbeat(b) for b in dashboard(request).control.alive("master")]})


@requires("viewer")
def supervisors(request: Request) -> ApiResponse:
    """
    ---
    summary: Running supervisors
    tags: [controls]
    responses:
      "200":
        description: Every supervisor that sent a heartbeat lately, by name.
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {type: array, items: {$ref: "#/components/schemas/Heartbeat"}}
      "401": {$ref: "#/components/responses/Unauthorized"}
    """
    beats = dashboard(request).control.alive("supervisor")
    return ApiResponse({"data": [heartbeat(b) for b in beats]})


def master_command(request: Request) -> ApiResponse:
    """
    ---
    summary: Pause, continue or terminate a master
    description: >
      pause and continue need the operator role, terminate the admin role. The command is
      queued; the master obeys at its next tick (its workers finish their current jobs).
    tags: [controls]
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
      - name: command
        in: path
        required: true
        schema: {type: string, enum: [pause, continue, terminate]}
    responses:
      "202": {$ref: "#/components/responses/CommandSent"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    return _command(request, "master")


def supervisor_command(request: Request) -> ApiResponse:
    """
    ---
    summary: Pause or continue a supervisor
    description: >
      Needs the operator role. The command is queued; the supervisor obeys at its next tick.
    tags: [controls]
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
      - name: command
        in: path
        required: true
        schema: {type: string, enum: [pause, continue]}
    responses:
      "202": {$ref: "#/components/responses/CommandSent"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    return _command(request, "supervisor")


def _command(request: Request, kind: str) -> ApiResponse:
    name, command = request.path_params["name"], request.path_params["command"]
    send_command(request, kind, name, command)
    return ApiResponse({"kind": kind, "name": name, "command": command}, status_code=202)


routes = [
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/overview", overview, methods=["GET"]),
    Route("/api/masters", masters, methods=["GET"]),
    Route("/api/supervisors", supervisors, methods=["GET"]),
    Route("/api/masters/{name}/{command}", master_command, methods=["POST"]),
    Route("/api/supervisors/{name}/{command}", supervisor_command, methods=["POST"]),
]
