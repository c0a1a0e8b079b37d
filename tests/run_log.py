"""The run log: jobs append one JSON line per run to ``$SKYLINE_TEST_RECORD_DIR/runs.log``,
so a test can count executions across processes. It imports nothing but the standard
library, for apps that must stay lean (``tests/lean_jobs.py``).
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
        log.write(line + "\n")


def runs(folder: Path, kind: str | None = None) -> list[dict]:
    path = folder / "runs.log"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [line for line in lines if kind is None or line["kind"] == kind]
