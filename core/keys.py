"""Every Redis key Skyline uses is spelled here, and nowhere else.

A queue's keys share the hash tag ``{queue:NAME}`` so its Lua scripts touch one
cluster slot.
"""

from dataclasses import dataclass

DEFAULT_PREFIX = "skyline:"


@dataclass(frozen=True)
class QueueKeys:
    ready: str
    delayed: str
    reserved: str
    notify: str

    def as_list(self) -> list[str]:
        return [self.ready, self.delayed, self.reserved, self.notify]


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    def queue(self, name: str) -> QueueKeys:
        base = f"{self.prefix}{{queue:{name}}}"
        return QueueKeys(
            ready=base,
            delayed=f"{base}:delayed",
            reserved=f"{base}:reserved",
            notify=f"{base}:notify",
        )

    def rate_limit(self, limiter: str, by: str, window: int) -> str:
        """One counter per limiter, key and fixed window."""
        return f"{self.prefix}limiter:{limiter}:{by}:{window}"

    def overlap_lock(self, key: str) -> str:
        return f"{self.prefix}overlap:{key}"

    def exception_throttle(self, key: str) -> str:
        return f"{self.prefix}throttle:{key}"

    def unique_lock(self, job_name: str, unique_id: str) -> str:
        return f"{self.prefix}unique:{job_name}:{unique_id}"

    def masters(self) -> str:
        """Sorted set of master names by last heartbeat (ms)."""
        return f"{self.prefix}masters"

    def master(self, name: str) -> str:
        return f"{self.prefix}master:{name}"

    def supervisors(self) -> str:
        return f"{self.prefix}supervisors"

    def supervisor(self, name: str) -> str:
        return f"{self.prefix}supervisor:{name}"

    def commands(self, target: str) -> str:
        """Commands waiting for one master or supervisor."""
        return f"{self.prefix}commands:{target}"

    def queue_name(self, ready_key: str) -> str:
        """The queue name inside a ready-list key, e.g. from a BLPOP on a notify key."""
        return ready_key[ready_key.index("{queue:") + 7 : ready_key.index("}")]
