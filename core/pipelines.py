"""Script calls inside pipelines, sent in one round trip.

redis-py checks a pipeline's scripts with SCRIPT EXISTS before sending it, a round
trip of its own on every execute. Here a script call is a plain EVALSHA, and the rare
call that finds its script gone (a restarted or flushed Redis) is loaded and sent again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

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

    A script sent again runs after the rest of its pipeline: only the first use after
    Redis lost its scripts can see that order.
    """
    sent = [args for args, _ in pipe.command_stack]
    replies = pipe.execute(raise_on_error=False)
    lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if lost:
        for i in lost:
            pipe.script_load(_sources[sent[i][1]])
            pipe.execute_command(*sent[i])
        again = pipe.execute(raise_on_error=False)[1::2]
        for i, reply in zip(lost, again, strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
