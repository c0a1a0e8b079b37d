"""Script calls inside pipelines, sent in one round trip.

redis-py checks a pipeline's scripts with SCRIPT EXISTS before sending it, a round
trip of its own on every execute. Here a script call is a plain EVALSHA, and the rare
call that finds its script gone (a restarted or flushed Redis) is loaded and sent again.

A pipeline is collected with redis-py's commands but sent by ``round_trip``: redis-py's
own execute, with its observability hooks and a packer that wraps hiredis's, took a
quarter of the instructions of a recorded dispatch (README, *Instructions per job*).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import hiredis
import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.connection import AbstractConnection, ConnectionPool
from redis.exceptions import NoScriptError, ResponseError

Writes = Callable[[Pipeline], None]  # commands that ride in another operation's round trip

INCLUDE = re.compile(r"^-- include (\w+)$", re.MULTILINE)
_sources: dict[str, str] = {}  # sha -> Lua text, of the files in core/lua only


def register(client: redis.Redis, name: str) -> Script:
    text = lua_source(name)
    script = client.register_script(text)
    _sources[script.sha] = text
    return script


def lua_source(name: str) -> str:
    """The text of ``core/lua/NAME.lua``, each ``-- include OTHER`` line replaced by the text
    of ``OTHER.lua``: Redis scripts cannot load one another, and a helper two scripts need
    is kept in one file."""
    text = resources.files("core").joinpath(f"lua/{name}.lua").read_text()
    return INCLUDE.sub(lambda found: lua_source(found.group(1)).rstrip("\n"), text)


def call(pipe: Pipeline, script: Script, keys: list[str], args: list[Any]) -> None:
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def execute(pipe: Pipeline) -> list[Any]:
    """Run the pipeline; raise its first error, after sending lost scripts again.

    Replies are Redis's own, without redis-py's response callbacks. A script sent again
    runs after the rest of its pipeline: only the first use after Redis lost its scripts
    can see that order.
    """
    commands = [args for args, _ in pipe.command_stack]
    pipe.reset()
    replies = round_trip(pipe.connection_pool, commands)
    lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if lost:
        again = [(("SCRIPT", "LOAD", _sources[commands[i][1]]), commands[i]) for i in lost]
        resent = round_trip(pipe.connection_pool, [c for pair in again for c in pair])
        for i, reply in zip(lost, resent[1::2], strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def round_trip(pool: ConnectionPool, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` at once on one pooled connection and read every reply, an error
    reply as its exception; retried as redis-py retries its pipelines."""
    connection = pool.get_connection()
    try:
        return connection.retry.call_with_retry(
            lambda: _send_and_read(connection, commands), lambda _error: connection.disconnect()
        )
    finally:
        pool.release(connection)


def _send_and_read(connection: AbstractConnection, commands: list[tuple[Any, ...]]) -> list[Any]:
    connection.send_packed_command([b"".join([hiredis.pack_command(c) for c in commands])])
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except ResponseError as error:  # read to the end, so the connection stays in step
            replies.append(error)
    return replies
