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

    def snapshot_lock(self) -> str:
        """Held by the one scheduler that takes the current interval's metric snapshot."""
        return f"{self.prefix}metrics:snapshot-lock"

    def last_snapshot(self) -> str:
        """When the interval counters were last taken, in ms."""
        return f"{self.prefix}metrics:last-snapshot"

    def alert_cooldown(self, alert: str, connection: str, queue: str) -> str:
        """When ``alert`` (e.g. "long_wait") last fired for one queue, in ms."""
        return f"{self.prefix}alerts:{alert}:{connection}:{queue}"

    def job_record(self, job_id: str) -> str:
        """One job's record: a hash with a TTL."""
        return f"{self.prefix}job:{job_id}"

    def job_index(self, index: str) -> str:
        """Job ids by time: recent, pending, completed, silenced, failed, recent_failed."""
        return f"{self.prefix}jobs:{index}"

    def monitoring(self) -> str:
        """The set of monitored tags."""
        return f"{self.prefix}monitoring"

    def monitored_jobs(self, tag: str) -> str:
        return f"{self.prefix}monitored:{tag}"

    def metrics_interval(self) -> str:
        """Counters since the last snapshot: one hash, so one MULTI reads and resets them all."""
        return f"{self.prefix}metrics:interval"

    def metrics_minute(self, minute: int) -> str:
        """Jobs and runtime per queue in one minute (minutes since the epoch)."""
        return f"{self.prefix}metrics:minute:{minute}"

    def metrics_failed_hour(self, hour: int) -> str:
        return f"{self.prefix}metrics:failed:{hour}"

    def measured_queues(self) -> str:
        return f"{self.prefix}metrics:queues"

    def login_failures(self, scope: str, who: str) -> str:
        """Failed dashboard sign-ins of one account or one address, within the window."""
        return f"{self.prefix}login-failures:{scope}:{who}"

    def claude_budget(self, model: str, part: str) -> str:
        """One model's shared Claude rate limit; ``part`` is ``log`` (reservations by time)
        or ``state`` (their totals, and what the API said remains until its reset). The hash
        tag keeps both in one cluster slot for the limiter's script."""
        return f"{self.prefix}{{claude-budget:{model}}}:{part}"

    def claude_response(self, digest: str) -> str:
        """A cached Claude response, by the digest of the request that produced it; with a
        TTL, so an identical request within it reuses the answer instead of paying again."""
        return f"{self.prefix}claude:response:{digest}"

    def queue_name(self, ready_key: str) -> str:
        """The queue name inside a ready-list key, e.g. from a BLPOP on a notify key."""
        return ready_key[ready_key.index("{queue:") + 7 : ready_key.index("}")]
