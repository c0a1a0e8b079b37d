"""The master supervisor: one per host, running the supervisors of the current environment.

Signal handlers only note their request; each tick obeys those, in the order they came,
then the commands from Redis, runs every supervisor's loop and writes the master's
heartbeat. Requests queue up rather than overwrite one another: ``timeout`` and
job-control shells send SIGCONT ("continue") right behind SIGTERM or SIGINT. Terminating
stops the workers gracefully and waits for their jobs, unless ``fast_termination`` is set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time

import psutil
import redis

from balancer.supervisor import Supervisor
from core.control import ControlRepository

log = logging.getLogger("skyline.master")

TICK_S = 0.5


def master_name() -> str:
    """Like Horizon: the host name and a short random part, unique per master."""
    return f"{socket.gethostname()}-{os.urandom(2).hex()}"


class Master:
    def __init__(
        self,
        name: str,
        supervisors: list[Supervisor],
        control: ControlRepository,
        *,
        fast_termination: bool = False,
        memory_mb: int = 256,
    ) -> None:
        self.name = name
        self.supervisors = supervisors
        self.control = control
        self.fast_termination = fast_termination
        self.memory_mb = memory_mb
        self.paused = False
        self.terminating = False
        self._signalled: list[str] = []  # signals' requests, read by the next tick
        self._process = psutil.Process()

    def run(self) -> int:
        self._install_signals()
        log.info("master %s started with %d supervisors", self.name, len(self.supervisors))
        try:
            while not self.terminating:
                started = time.monotonic()
                try:
                    self.tick(started)
                except redis.RedisError as exc:
                    log.warning("Redis error (%s); the workers go on, retrying next tick", exc)
                time.sleep(max(TICK_S - (time.monotonic() - started), 0))
            self._wind_down()
        finally:
            with contextlib.suppress(redis.RedisError):
                self.control.forget("master", self.name)
                for supervisor in self.supervisors:
                    self.control.forget("supervisor", supervisor.name)
        return 0

    def tick(self, now: float) -> None:
        signalled, self._signalled = self._signalled, []
        self.obey([{"command": name} for name in signalled])  # before Redis, which may be down
        if not self.terminating:
            self.obey(self.control.receive(self.name))
        if self.terminating:
            return
        for supervisor in self.supervisors:
            supervisor.loop(now)
        self.heartbeat()
        if self._process.memory_info().rss > self.memory_mb * 1024 * 1024:
            log.warning("master uses more than %d MB; terminating to be restarted", self.memory_mb)
            self.terminating = True

    def obey(self, commands: list[dict]) -> None:
        for command in commands:
            name = command["command"]
            if name == "pause":
                self.paused = True
                for supervisor in self.supervisors:
                    supervisor.pause()
            elif name == "continue":
                self.paused = False
                for supervisor in self.supervisors:
                    supervisor.resume()
            elif name == "terminate":
                self.terminating = True
            else:
                log.warning("master %s ignored unknown command %r", self.name, command)

    def heartbeat(self) -> None:
        details = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "supervisors": [s.name for s in self.supervisors],
            "processes": sum(s.processes() for s in self.supervisors),
        }
        self.control.beat("master", self.name, "paused" if self.paused else "running", details)

    def _wind_down(self) -> None:
        """SIGTERM every worker; wait for their jobs unless fast termination is on."""
        now = time.monotonic()
        for supervisor in self.supervisors:
            supervisor.terminate(now)
        if self.fast_termination:
            return
        while any(s.processes() for s in self.supervisors):
            now = time.monotonic()
            for supervisor in self.supervisors:
                for pool in supervisor.pools.values():
                    pool.monitor(now)
            time.sleep(0.1)

    def _install_signals(self) -> None:
        def asks(command: str):
            def handler(*_: object) -> None:
                self._signalled.append(command)

            return handler

        signal.signal(signal.SIGTERM, asks("terminate"))
        signal.signal(signal.SIGINT, asks("terminate"))
        signal.signal(signal.SIGUSR2, asks("pause"))
        signal.signal(signal.SIGCONT, asks("continue"))
