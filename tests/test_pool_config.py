"""Pool config: merging, one-line errors naming file, table and key, and `skyline config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from balancer.config import SupervisorConfig, load_pool_config, load_pools, worker_args
from core.cli.work import work
from core.settings import ConfigError, load_settings
from tests.conftest import ROOT

CONFIG = """
fast_termination = true

[connections.bulk]
url = "redis://bulk:6379/0"

[defaults.emails]
queues = ["emails", "default"]
max_processes = 5
tries = 3
backoff = [10, 60]

[defaults.reports]
queues = ["reports"]

[environments.production.emails]
max_processes = 20
min_processes = 2
connection = "bulk"
weights = { emails = 2.0 }

[environments.production.podcasts]
queues = ["podcasts"]
balance = "off"
processes = 4
timeout = 120

[environments.local.emails]
balance = "simple"
processes = 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "skyline.toml"
    path.write_text(text)
    return path


def pools_of(tmp_path: Path, text: str, env: str = "production"):
    path = write(tmp_path, text)
    return load_pools(load_settings(path, environ={}), env, source=str(path))


def error_of(tmp_path: Path, text: str, env: str = "production") -> str:
    with pytest.raises(ConfigError) as caught:
        pools_of(tmp_path, text, env)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'skyline.toml'}: ")
    return message


def test_environment_overrides_defaults_key_by_key(tmp_path):
    pools = pools_of(tmp_path, CONFIG)
    assert set(pools) == {"emails", "podcasts"}  # reports has only defaults: not started
    emails = pools["emails"]
    assert (emails.queues, emails.tries, emails.backoff) == (["emails", "default"], 3, [10, 60])
    assert (emails.min_processes, emails.max_processes, emails.connection) == (2, 20, "bulk")
    assert (emails.balance, emails.auto_scaling_strategy, emails.weights) == (
        "auto",
        "time",
        {"emails": 2.0},
    )
    podcasts = pools["podcasts"]
    assert (podcasts.balance, podcasts.processes, podcasts.timeout) == ("off", 4, 120)
    assert (podcasts.connection, podcasts.concurrency, podcasts.tries) == ("redis", 1, None)


def test_environment_comes_from_skyline_env_and_top_level_keys_ride_along(tmp_path):
    path = write(tmp_path, CONFIG)
    settings = load_settings(path, environ={"SKYLINE_ENV": "local"})
    pool = load_pool_config(settings)
    assert pool.environment == "local"
    assert (pool.fast_termination, pool.master_memory) == (True, 256)
    [emails] = pool.supervisors.values()
    assert (emails.balance, emails.processes, emails.max_processes) == ("simple", 2, 5)


def test_defaults_follow_settings(tmp_path):
    text = 'default_connection = "bulk"\n[connections.bulk]\n[worker]\nconcurrency = 4\n'
    pools = pools_of(tmp_path, text + '[environments.production.a]\nqueues = ["a"]\n')
    assert (pools["a"].connection, pools["a"].concurrency) == ("bulk", 4)


@pytest.mark.parametrize(
    ("table", "line", "where", "problem"),
    [
        (
            "[environments.production.emails]",
            "max_procesess = 3",
            "[environments.production.emails] max_procesess: ",
            "unknown key (did you mean 'max_processes'?)",
        ),
        (
            "[defaults.emails]",
            "colour = 'blue'",
            "[defaults.emails] colour: ",
            "unknown key",
        ),
        (
            "[environments.production.emails]",
            'max_processes = "20"',
            "[environments.production.emails] max_processes: ",
            "must be a whole number (got '20')",
        ),
        (
            "[environments.production.emails]",
            "force = 1",
            "[environments.production.emails] force: ",
            "must be true or false (got 1)",
        ),
        (
            "[environments.production.emails]",
            "balance = 'fast'",
            "[environments.production.emails] balance: ",
            "must be one of off, simple, auto (got 'fast')",
        ),
        (
            "[environments.production.emails]",
            "auto_scaling_strategy = 'depth'",
            "[environments.production.emails] auto_scaling_strategy: ",
            "must be one of time, size (got 'depth')",
        ),
        (
            "[environments.production.emails]",
            "nice = 20",
            "[environments.production.emails] nice: ",
            "must be at most 19 (got 20)",
        ),
        (
            "[environments.production.emails]",
            "backoff = [10, -1]",
            "[environments.production.emails] backoff: ",
            "must be seconds (0 or more), or a list of them like [10, 60]",
        ),
        (
            "[defaults.emails]",
            "backoff = []",
            "[defaults.emails] backoff: ",
            "must be seconds (0 or more), or a list of them like [10, 60] (got [])",
        ),
        (
            "[environments.production.emails]",
            "min_processes = 3\nmax_processes = 5",
            "[environments.production.emails] min_processes: ",
            "3 per queue x 2 queues = 6 exceeds max_processes = 5 "
            "(lower min_processes, or raise max_processes to at least 6)",
        ),
        (
            "[environments.production.emails]",
            "weights = { emails = 2.0, urgent = 3.0 }",
            "[environments.production.emails] weights.urgent: ",
            "'urgent' is not one of this supervisor's queues (emails, default)",
        ),
        (
            "[environments.production.emails]",
            "target_wait = { emails = 0 }",
            "[environments.production.emails] target_wait.emails: ",
            "must be greater than 0 (got 0)",
        ),
        (
            "[defaults.emails]",
            "connection = 'archive'",
            "[defaults.emails] connection: ",
            "unknown connection 'archive'; known connections: redis, sync",
        ),
        (
            "[environments.production.emails]",
            "connection = 'sync'",
            "[environments.production.emails] connection: ",
            "'sync' is a sync connection, and workers need a Redis one",
        ),
        (
            "[environments.production.emails]",
            "queues = []",
            "[environments.production.emails] queues: ",
            "must not be empty",
        ),
        (
            "[environments.production.emails]",
            "queues = ['a,b']",
            "[environments.production.emails] queues: ",
            "a queue name cannot contain spaces, commas or braces",
        ),
        (
            "[environments.production.emails]",
            "queues = ['a', 'b', 'a']",
            "[environments.production.emails] queues: ",
            "lists 'a' twice",
        ),
        (
            "[environments.production.emails]",
            "balance = 'simple'\nprocesses = 1",
            "[environments.production.emails] processes: ",
            "set processes to at least 2",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_file_table_and_key(tmp_path, table, line, where, problem):
    base = '[defaults.emails]\nqueues = ["emails", "default"]\n'
    base += "[environments.production.emails]\n"
    text = base.replace(f"{table}\n", f"{table}\n{line}\n")
    message = error_of(tmp_path, text)
    assert f"skyline.toml: {where}" in message
    assert problem in message


def test_missing_queues_names_the_environment_table(tmp_path):
    message = error_of(tmp_path, "[environments.production.emails]\nprocesses = 2\n")
    assert "[environments.production.emails] queues: is required (add queues = " in message


def test_unknown_environment_lists_the_known_ones(tmp_path):
    message = error_of(tmp_path, CONFIG, env="staging")
    assert "[environments.staging]: environment 'staging' (SKYLINE_ENV) is not declared" in message
    assert "known environments: local, production" in message


def test_an_environment_without_supervisors_is_an_error(tmp_path):
    message = error_of(tmp_path, '[defaults.a]\nqueues = ["a"]\n', env="local")
    assert "[environments.local]: environment 'local' (SKYLINE_ENV) is not declared" in message
    assert "known environments: none" in message
    assert "a [defaults.*] table alone starts nothing" in message


def test_a_supervisor_name_must_be_a_bare_key(tmp_path):
    message = error_of(tmp_path, '[environments.production."a b"]\nqueues = ["a"]\n')
    assert 'skyline.toml: [environments.production."a b"]: a supervisor name may use' in message


def test_worker_args_carry_only_what_is_set():
    config = SupervisorConfig(
        queues=["high", "default"],
        concurrency=2,
        tries=3,
        timeout=30.0,
        backoff=[10, 60],
        max_time=3600,
        max_jobs=500,
        memory=128,
        sleep=0.5,
        rest=0,
        nice=5,
        force=True,
    )
    assert worker_args(config) == [
        "work",
        "high,default",
        "--connection",
        "redis",
        "--concurrency",
        "2",
        "--tries",
        "3",
        "--timeout",
        "30",
        "--backoff",
        "10,60",
        "--max-time",
        "3600",
        "--max-jobs",
        "500",
        "--memory",
        "128",
        "--sleep",
        "0.5",
        "--rest",
        "0",
    ]
    plain = SupervisorConfig(queues=["a", "b"], connection="bulk")
    assert worker_args(plain, ["b"]) == ["work", "b", "--connection", "bulk", "--concurrency", "1"]
    with pytest.raises(ValueError, match="not in this supervisor's"):
        worker_args(plain, ["c"])


def test_worker_args_are_what_skyline_work_accepts():
    config = SupervisorConfig(queues=["a"], tries=0, timeout=2.5, backoff=7, sleep=1, rest=0.1)
    name, *args = worker_args(config)
    params = work.make_context(name, args).params
    assert (params["queues"], params["connection"], params["concurrency"]) == ("a", "redis", 1)
    assert (params["tries"], params["timeout"], params["backoff"]) == (0, 2.5, "7")
    assert (params["sleep"], params["rest"]) == (1.0, 0.1)


# `skyline config`, run for real: a process of its own, settings from the environment only.


def run_config(tmp_path: Path, *args: str, env: str = "production", text: str = CONFIG):
    variables = {
        k: v for k, v in os.environ.items() if not k.startswith("SKYLINE_") and k != "REDIS_URL"
    }
    variables |= {"SKYLINE_CONFIG": str(write(tmp_path, text)), "SKYLINE_ENV": env}
    command = [sys.executable, "-m", "balancer.cli_config", *args]
    return subprocess.run(
        command, env=variables, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def test_config_check_reports_the_environment(tmp_path):
    result = run_config(tmp_path, "check")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "OK: 2 supervisors for environment production\n"
    result = run_config(tmp_path, "check", "--env", "local")
    assert result.stdout == "OK: 1 supervisor for environment local\n"


def test_config_check_fails_with_one_line(tmp_path):
    result = run_config(tmp_path, "check", text=CONFIG.replace("processes = 4", "processes = 0"))
    assert (result.returncode, result.stdout) == (1, "")
    [line] = result.stderr.splitlines()
    assert line == (
        f"Error: {tmp_path / 'skyline.toml'}: [environments.production.podcasts] processes: "
        "must be at least 1 (got 0)"
    )
    result = run_config(tmp_path, "check", env="staging")
    assert result.returncode == 1
    assert "known environments: local, production" in result.stderr


def test_config_check_all_checks_every_environment(tmp_path):
    text = CONFIG + '[environments.staging.emails]\nbalance = "fast"\n'
    result = run_config(tmp_path, "check", "--all", text=text)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "OK: 1 supervisor for environment local",
        "OK: 2 supervisors for environment production",
    ]
    [line] = result.stderr.splitlines()
    assert "[environments.staging.emails] balance: must be one of off, simple, auto" in line
    assert run_config(tmp_path, "check", "--all").returncode == 0


def test_config_show_json_is_the_effective_config(tmp_path):
    result = run_config(tmp_path, "show", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["environment"], shown["fast_termination"], shown["master_memory"]) == (
        "production",
        True,
        256,
    )
    emails = shown["supervisors"]["emails"]
    assert (emails["connection"], emails["max_processes"], emails["backoff"]) == (
        "bulk",
        20,
        [10, 60],
    )
    assert (emails["memory"], emails["weights"]) == (None, {"emails": 2.0})
    assert set(shown["supervisors"]) == {"emails", "podcasts"}


def test_config_show_prints_toml_that_loads_back_to_the_same_pools(tmp_path):
    result = run_config(tmp_path, "show")
    assert result.returncode == 0, result.stderr
    assert "[environments.production.emails]\n" in result.stdout
    assert "\nmemory =" not in result.stdout  # unset worker options are left to the worker
    shown = tomllib.loads(result.stdout)
    assert shown["fast_termination"] is True
    again = tmp_path / "again"
    again.mkdir()
    text = result.stdout + '\n[connections.bulk]\nurl = "redis://bulk:6379/0"\n'
    assert pools_of(again, text) == pools_of(tmp_path, CONFIG)


def test_config_runs_under_the_skyline_command_with_its_config_option(tmp_path):
    path = write(tmp_path, CONFIG)
    script = (
        "import sys; from core.cli import cli; from balancer.cli_config import config; "
        "cli.add_command(config); cli.main(sys.argv[1:], prog_name='skyline')"
    )
    variables = {k: v for k, v in os.environ.items() if not k.startswith("SKYLINE_")}
    command = [sys.executable, "-c", script, "--config", str(path), "config", "check"]
    command += ["--env", "production"]
    result = subprocess.run(command, env=variables, cwd=ROOT, capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (
        0,
        "OK: 2 supervisors for environment production\n",
    )
    result = subprocess.run(
        [*command[:-3], "show", "--env", "nowhere"], env=variables, capture_output=True, text=True
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: {path}: [environments.nowhere]: environment 'nowhere'")
