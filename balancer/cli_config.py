"""``skyline config``: check or show the supervisor pools skyline.toml declares."""

from __future__ import annotations

import os
from typing import Any

import click

from balancer.config import PoolConfig, load_pool_config, load_pools, toml_key, toml_string
from core.cli.common import AppContext, echo_json, fail_cleanly, pass_app
from core.settings import DEFAULT_CONFIG_FILE, ConfigError


@click.group("config")
@click.pass_context
def config(ctx: click.Context) -> None:
    """Check or show the supervisor pools of skyline.toml."""
    if ctx.obj is None:  # run alone (python -m balancer.cli_config), not under `skyline`
        ctx.obj = AppContext(None)


@config.command()
@click.option("--env", help="Environment to check (default: SKYLINE_ENV, else local).")
@click.option("--all", "every", is_flag=True, help="Check every environment.")
@pass_app
def check(app: AppContext, env: str | None, every: bool) -> None:
    """Validate the pool config without starting anything; exit 1 on a mistake."""
    if env and every:
        raise click.UsageError("use --env NAME or --all, not both")
    settings = app.settings
    names = (sorted(settings.environments) or [settings.env]) if every else [env or settings.env]
    failed = False
    for name in names:
        try:
            pools = load_pools(settings, name, _source(app))
        except ConfigError as exc:
            click.echo(f"Error: {exc}", err=True)
            failed = True
            continue
        plural = "" if len(pools) == 1 else "s"
        click.echo(f"OK: {len(pools)} supervisor{plural} for environment {name}")
    if failed:
        raise SystemExit(1)


@config.command()
@click.option("--env", help="Environment to show (default: SKYLINE_ENV, else local).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def show(app: AppContext, env: str | None, as_json: bool) -> None:
    """Print the effective pool config: defaults merged into the environment's tables."""
    source = _source(app)
    with fail_cleanly():
        pool = load_pool_config(app.settings, env, source)
    if as_json:
        echo_json(pool.model_dump(mode="json"))
    else:
        click.echo(render_toml(pool, source))


def _source(app: AppContext) -> str:
    return app.config_file or os.environ.get("SKYLINE_CONFIG") or DEFAULT_CONFIG_FILE


def render_toml(pool: PoolConfig, source: str) -> str:
    """The effective config as skyline.toml would spell it; options left unset are left out."""
    env = toml_key(pool.environment)
    lines = [
        f"# Effective pool config for environment {pool.environment!r}, from {source}.",
        "# Worker options not listed use the worker's defaults ([worker]).",
        f"fast_termination = {_toml(pool.fast_termination)}",
        f"master_memory = {_toml(pool.master_memory)}",
    ]
    for name, supervisor in pool.supervisors.items():
        lines += ["", f"[environments.{env}.{toml_key(name)}]"]
        for key, value in supervisor.model_dump(exclude_none=True).items():
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{toml_key(k)} = {_toml(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    return toml_string(str(value))


if __name__ == "__main__":
    config(prog_name="skyline config")
