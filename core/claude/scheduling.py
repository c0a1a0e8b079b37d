"""The Claude workload's scheduled tasks: expiring stale requests and polling Message Batches.

They run where the application runs the Claude workload (``core.claude.job`` in its
``app`` setting), beside the snapshots, on every scheduler of the cluster: neither needs
a lock, since every change they make is conditional.
"""

from __future__ import annotations

import logging
from datetime import datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.claude.services import ClaudeServices
from core.runtime import Runtime

CLAUDE_APP = "core.claude.job"
EXPIRY_INTERVAL_S = 60

log = logging.getLogger("skyline.claude")


def schedule_claude(scheduler: BaseScheduler, runtime: Runtime, now: datetime) -> None:
    if CLAUDE_APP not in runtime.settings.app:
        return
    services = ClaudeServices(runtime.dispatcher, runtime.engine)
    expiry = IntervalTrigger(seconds=EXPIRY_INTERVAL_S)
    scheduler.add_job(
        expire, expiry, args=[services], id="claude-expiry", name="claude expiry", next_run_time=now
    )
    polling = IntervalTrigger(seconds=services.claude.message_batch_poll_s)
    scheduler.add_job(
        poll,
        polling,
        args=[services],
        id="claude-message-batches",
        name="claude message batches",
        next_run_time=now,
    )


def expire(services: ClaudeServices) -> None:
    from core.claude.expiry import expire_pending

    done = expire_pending(services)
    if done.expired:
        log.info("expired %d Claude requests; removed %d jobs", len(done.expired), done.removed)


def poll(services: ClaudeServices) -> None:
    from core.claude.message_batches import poll as poll_batches

    closed = poll_batches(services)
    if closed:
        log.info("imported the results of Message Batches %s", ", ".join(closed))
