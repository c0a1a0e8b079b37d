"""The JSON API's frame: its OpenAPI document, token auth, the overview and the controls."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib.metadata import version
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route

from core.control import ControlRepository
from dashboard.openapi import openapi_document
from tests.dashboard.conftest import csrf_of
from tests.jobs import noop

MASTER = "web-1"
SUPERVISOR = "web-1:main"


@pytest.fixture
def control(app) -> ControlRepository:
    return app.state.dashboard.control


@pytest.fixture
def running(control: ControlRepository) -> ControlRepository:
    """A master and its supervisor, alive by their heartbeats."""
    control.beat("master", MASTER, "running", {"host": "web-1", "processes": 3})
    pools = {"emails": {"processes": 2, "busy": 1}, "default": {"processes": 1, "busy": 0}}
    details = {"queues": ["emails", "default"], "pools": pools, "processes": 3}
    control.beat("supervisor", SUPERVISOR, "running", details)
    return control


@pytest.fixture
def bearer(app) -> Callable[[str], dict[str, str]]:
    """The Authorization header of a new API token with ``role``."""

    def bearer(role: str) -> dict[str, str]:
        token = app.state.dashboard.tokens.create(f"{role}-script", role)
        return {"Authorization": f"Bearer {token}"}

    return bearer


def api_operations(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path as OpenAPI writes it, method) of every route under /api, mounts included."""
    for route in routes:
        if isinstance(route, Mount):
            yield from api_operations(route.routes, prefix + route.path)
        elif isinstance(route, Route) and (prefix + route.path).startswith("/api/"):
            path = re.sub(r":\w+}", "}", prefix + route.path)
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield path, method.lower()


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_the_openapi_document_describes_every_api_route(app, client, bearer):
    response = client.get("/api/openapi.json", headers=bearer("viewer"))
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    info = document["info"]
    assert (info["title"], info["version"]) == ("Skyline", version("skyline"))
    operations = list(api_operations(app.routes))
    assert ("/api/overview", "get") in operations and len(operations) >= 6
    for path, method in operations:
        operation = document["paths"].get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} is missing from the document"
        assert operation.get("responses"), f"{method.upper()} {path} has no responses"
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared >= set(re.findall(r"{(\w+)}", path)), f"{method.upper()} {path}"
    for ref in set(refs(document)):
        assert resolve(document, ref) is not None, ref


def test_the_document_asks_for_a_bearer_token_or_the_session_cookie(client, bearer):
    document = client.get("/api/openapi.json", headers=bearer("viewer")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["session"]["type"] == "apiKey" and schemes["session"]["in"] == "cookie"
    assert document["security"] == [{"bearer": []}, {"session": []}]


def test_the_document_needs_sign_in(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 401
    assert "error" in response.json()


def test_the_overview_as_json_has_status_figures_queues_and_heartbeats(client, bearer, running):
    noop.options(queue="emails").dispatch(1)
    noop.options(queue="emails").dispatch(2)
    response = client.get("/api/overview", headers=bearer("viewer"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "active"
    assert body["processes"] == 3
    assert set(body["figures"]) >= {"jobs_per_minute", "jobs_past_hour", "failed_past_7_days"}
    queues = {q["name"]: q for q in body["queues"]}
    assert queues["emails"]["ready"] == 2
    assert queues["emails"]["processes"] == 2
    assert queues["default"]["processes"] == 1
    assert [m["name"] for m in body["masters"]] == [MASTER]
    assert body["masters"][0]["status"] == "running"
    assert re.match(r"\d{4}-\d\d-\d\dT", body["masters"][0]["last_seen"])
    assert [s["name"] for s in body["supervisors"]] == [SUPERVISOR]


def test_masters_and_supervisors_list_their_heartbeats(client, bearer, running):
    headers = bearer("viewer")
    masters = client.get("/api/masters", headers=headers).json()["data"]
    supervisors = client.get("/api/supervisors", headers=headers).json()["data"]
    assert [(m["name"], m["kind"], m["details"]["host"]) for m in masters] == [
        (MASTER, "master", "web-1")
    ]
    assert [(s["name"], s["details"]["queues"]) for s in supervisors] == [
        (SUPERVISOR, ["emails", "default"])
    ]


def test_a_viewer_token_may_read_but_not_pause(client, bearer, running):
    headers = bearer("viewer")
    response = client.post(f"/api/masters/{MASTER}/pause", headers=headers)
    assert response.status_code == 403
    assert "operator" in response.json()["error"]
    assert running.receive(MASTER) == []


def test_an_operator_token_pauses_a_master_without_a_csrf_token(app, client, bearer, running):
    response = client.post(f"/api/masters/{MASTER}/pause", headers=bearer("operator"))
    assert response.status_code == 202
    assert response.json() == {"kind": "master", "name": MASTER, "command": "pause"}
    assert running.receive(MASTER) == [{"command": "pause"}]
    [entry], _ = app.state.dashboard.audit.page()
    assert (entry.actor, entry.action, entry.target) == (
        "operator-script (token)",
        "master.pause",
        MASTER,
    )


def test_an_operator_token_pauses_and_continues_a_supervisor(client, bearer, running):
    headers = bearer("operator")
    for command in ("pause", "continue"):
        response = client.post(f"/api/supervisors/{SUPERVISOR}/{command}", headers=headers)
        assert response.status_code == 202
    assert running.receive(SUPERVISOR) == [{"command": "pause"}, {"command": "continue"}]


def test_terminate_needs_the_admin_role(client, bearer, running):
    refused = client.post(f"/api/masters/{MASTER}/terminate", headers=bearer("operator"))
    assert refused.status_code == 403
    assert running.receive(MASTER) == []
    accepted = client.post(f"/api/masters/{MASTER}/terminate", headers=bearer("admin"))
    assert accepted.status_code == 202
    assert running.receive(MASTER) == [{"command": "terminate"}]


def test_an_unknown_master_or_command_is_a_404_in_json(client, bearer, running):
    headers = bearer("admin")
    unknown = client.post("/api/masters/nobody/pause", headers=headers)
    assert unknown.status_code == 404
    assert "nobody" in unknown.json()["error"]
    command = client.post(f"/api/masters/{MASTER}/explode", headers=headers)
    assert command.status_code == 404
    assert "explode" in command.json()["error"]
    supervisor = client.post(f"/api/supervisors/{SUPERVISOR}/terminate", headers=headers)
    assert supervisor.status_code == 404
    assert running.receive(MASTER) == [] and running.receive(SUPERVISOR) == []


def test_a_wrong_token_is_refused(client, bearer, running):
    bearer("admin")
    headers = {"Authorization": "Bearer sky_not-a-real-token"}
    assert client.get("/api/overview", headers=headers).status_code == 401
    response = client.post(f"/api/masters/{MASTER}/pause", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert running.receive(MASTER) == []


def test_a_session_needs_the_csrf_header_to_post_to_the_api(client, sign_in, running):
    sign_in(client, "operator")
    assert client.get("/api/overview").status_code == 200
    assert client.post(f"/api/masters/{MASTER}/pause").status_code == 403
    assert running.receive(MASTER) == []
    token = csrf_of(client, "/")
    response = client.post(f"/api/masters/{MASTER}/pause", headers={"X-CSRF-Token": token})
    assert response.status_code == 202
    assert running.receive(MASTER) == [{"command": "pause"}]


def test_the_page_buttons_share_the_api_checks(client, sign_in, running):
    """The HTML controls go through the same function: roles, liveness and the audit log."""
    sign_in(client, "operator")
    token = csrf_of(client, "/")
    data = {"csrf_token": token}
    assert client.post(f"/masters/{MASTER}/terminate", data=data).status_code == 403
    assert client.post("/masters/nobody/pause", data=data).status_code == 404
    response = client.post(f"/masters/{MASTER}/pause", data=data)
    assert response.status_code == 303
    assert running.receive(MASTER) == [{"command": "pause"}]


def test_token_requests_get_no_session_cookie(client, bearer, running):
    headers = bearer("operator")
    response = client.post(f"/api/masters/{MASTER}/continue", headers=headers)
    assert response.status_code == 202
    assert "set-cookie" not in response.headers
    assert "set-cookie" not in client.get("/api/masters", headers=headers).headers


def broken(request):
    """
    ---
    responses: [unclosed
    """


def thing(request):
    """
    ---
    responses: {"200": {description: A thing.}}
    """


def test_a_docstring_whose_yaml_breaks_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"tests\.dashboard\.test_api\.broken"):
        openapi_document([Route("/api/broken", broken)])


def test_only_api_routes_are_read_and_path_parameters_are_declared():
    routes = [Route("/things/{id:int}", thing), Route("/api/things/{id:int}", thing)]
    document = openapi_document(routes)
    assert list(document["paths"]) == ["/api/things/{id}"]
    [parameter] = document["paths"]["/api/things/{id}"]["get"]["parameters"]
    assert parameter == {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
