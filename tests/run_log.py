"""The run log: jobs append one JSON line per run to ``$SKYLINE_TEST_RECORD_DIR/runs.log``,
so a test can count executions across processes. It imports nothing but the standard
library, for apps that must stay lean (``tests/lean_jobs.py``).

Tests read the log while workers write it, and some kill workers: a reader can meet a record
still being written, or one cut short for good when a write spans two pages and its process
dies between them. So each record starts on a fresh line, and the reader takes only complete
lines that parse.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def record(kind: str, **fields) -> None:
    folder = os.environ.get("SKYLINE_TEST_RECORD_DIR")
    if not folder:
        return
    line = json.dumps({"kind": kind, "pid": os.getpid(), "t": time.time(), **fields}, default=str)
    with open(Path(folder) / "runs.log", "a") as log:
        log.write("\n" + line + "\n")  # on a line of its own, even after a record cut short


def runs(folder: Path, kind: str | None = None) -> list[dict]:
    path = folder / "runs.log"
    if not path.exists():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]  # a record still being written is read next time
    lines = []
    for line in filter(None, complete.splitlines()):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # cut short: its writer was killed mid-write, as some tests do
    return [line for line in lines if kind is None or line["kind"] == kind]
