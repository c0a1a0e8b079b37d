"""``skyline dashboard``, ``skyline user`` and ``skyline token``: serving the dashboard and
managing who may use it. Users and tokens are created here, never from the dashboard."""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import sys
from collections.abc import Iterator, Sequence

import click
from rich.console import Console
from rich.table import Table

from core.cli.common import AppContext, echo_json, pass_app
from dashboard.audit import AuditLog
from dashboard.users import ROLES, TokenRepository, UserError, UserRepository

role_option = click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="viewer reads, operator acts, admin all.",
)


@click.command("dashboard")
@click.option("--host", help="Address to listen on (default: [dashboard] host, 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port (default: [dashboard] port, 8000; 0 picks a free one).",
)
@click.option(
    "--scheduler/--no-scheduler",
    default=True,
    show_default=True,
    help="Also take the metric snapshots (a Redis lock keeps it to one taker per cluster).",
)
@click.option(
    "--first-admin",
    is_flag=True,
    help="On a fresh install (no users), create admin@localhost and print its password once.",
)
@pass_app
def dashboard_command(
    app: AppContext, host: str | None, port: int | None, scheduler: bool, first_admin: bool
) -> None:
    """Serve the dashboard until Ctrl-C or SIGTERM."""
    # uvicorn and the app load only here, not for every `skyline` command
    from dashboard.server import FIRST_ADMIN, create_first_admin, listening_on, serve

    app.settings = listening_on(app.settings, host, port)
    runtime = app.runtime
    runtime.ensure_schema()
    users = UserRepository(runtime.engine)
    auth_enabled = runtime.settings.dashboard.auth.enabled
    password = create_first_admin(users) if first_admin and auth_enabled else None

    def announce(url: str) -> None:
        click.echo(f"Dashboard: {url}")
        if password:
            click.echo(f"First admin: {FIRST_ADMIN}  password: {password}")
            click.echo("  (shown this once: note it, or add users with `skyline user add`)")
        elif auth_enabled and not users.count():
            click.echo("  No users yet: add one with `skyline user add EMAIL --role admin`.")

    serve(runtime, scheduler=scheduler, announce=announce)


@contextlib.contextmanager
def refused() -> Iterator[None]:
    """A refused change ends the command with its reason in one line."""
    try:
        yield
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


def _audit(app: AppContext, action: str, target: str, **detail: object) -> None:
    """Changes to who may sign in show in the dashboard's audit log too."""
    AuditLog(app.runtime.engine).record(f"{_login_name()} (cli)", action, target, detail)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        return "unknown"


def _users(app: AppContext) -> UserRepository:
    app.runtime.ensure_schema()
    return UserRepository(app.runtime.engine)


def _tokens(app: AppContext) -> TokenRepository:
    app.runtime.ensure_schema()
    return TokenRepository(app.runtime.engine)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(*headers)
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _when(moment: object) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "never"


@click.group()
def user() -> None:
    """Dashboard users (email, password, role)."""


@user.command("add")
@click.argument("email")
@role_option
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_app
def add_user(app: AppContext, email: str, role: str, password_stdin: bool) -> None:
    """Add a user; the password is asked for twice, unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with refused():
        added = _users(app).add(email, password, role)
    _audit(app, "user.add", added.email, role=role)
    click.echo(f"Added {added.email} ({added.role}).")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_users(app: AppContext, as_json: bool) -> None:
    """Every user, by email."""
    users = _users(app).list()
    if as_json:
        echo_json([dataclasses.asdict(u) for u in users])
    elif not users:
        click.echo("No users (add one with `skyline user add EMAIL --role admin`).")
    else:
        rows = [(u.email, u.role, _when(u.created_at), _when(u.last_login_at)) for u in users]
        _table(("Email", "Role", "Created", "Last sign-in"), rows)


@user.command("remove")
@click.argument("email")
@pass_app
def remove_user(app: AppContext, email: str) -> None:
    """Remove a user; their sessions end at once."""
    with refused():
        removed = _users(app).remove(email)
    if not removed:
        raise click.ClickException(f"no user {email} (see `skyline user list`)")
    _audit(app, "user.remove", email.strip().lower())
    click.echo(f"Removed {email}.")


@click.group()
def token() -> None:
    """API tokens for scripts (Authorization: Bearer <token>)."""


@token.command("add")
@click.argument("name")
@role_option
@pass_app
def add_token(app: AppContext, name: str, role: str) -> None:
    """Create a token and print it; only its hash is kept."""
    with refused():
        secret = _tokens(app).create(name, role)
    _audit(app, "token.add", name, role=role)
    click.echo(f"Token {name} ({role}); copy it now, it cannot be shown again:")
    click.echo(secret)


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def list_tokens(app: AppContext, as_json: bool) -> None:
    """Every token, by name (never the token itself)."""
    tokens = _tokens(app).list()
    if as_json:
        echo_json([dataclasses.asdict(t) for t in tokens])
    elif not tokens:
        click.echo("No API tokens (create one with `skyline token add NAME --role viewer`).")
    else:
        rows = [(t.name, t.role, _when(t.created_at), _when(t.last_used_at)) for t in tokens]
        _table(("Name", "Role", "Created", "Last used"), rows)


@token.command("revoke")
@click.argument("name")
@pass_app
def revoke_token(app: AppContext, name: str) -> None:
    """Revoke a token; requests carrying it are refused at once."""
    if not _tokens(app).revoke(name):
        raise click.ClickException(f"no token named {name!r} (see `skyline token list`)")
    _audit(app, "token.revoke", name)
    click.echo(f"Revoked token {name}.")


COMMANDS = [dashboard_command, user, token]
