"""Rows of the SQL store for bench/dashboard.py, through their repositories: failed jobs
(``FailedJobRepository.record``), batches (``BatchRepository``) and metric snapshots
(``SnapshotRepository.record``). One transaction per failed job and per batch job, as
production writes them."""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from typing import NamedTuple

from bench import jobs
from core.claude.cost import Usage, cost_usd
from core.claude.records import ClaudeRequestRepository, NewRequest, Response
from core.dispatcher import make_body
from core.job import FunctionJob
from core.payload import envelope, new_job_id, sign
from core.snapshots import MetricKind, Snapshot
from dashboard.context import Dashboard

WEEK_S = 7 * 24 * 3600
DAY_S = 24 * 3600
CUSTOMERS = 200  # each job is tagged with one of them
SNAPSHOT_JOBS = ("noop", "send_email", "resize_image", "charge_card", "heartbeat")
SNAPSHOT_JOBS += ("async_sleep_10ms",)
SNAPSHOT_QUEUES = ("bench", "emails", "images")
BATCH_NAMES = ("import customers {n}", "nightly report {n}", "resize album {n}")


class Failure(NamedTuple):
    job: FunctionJob
    exception_class: str
    message: str  # {n}: the job's argument


FAILURES = (
    Failure(jobs.send_email, "TimeoutError", "timed out after 30 s waiting for smtp.example.com"),
    Failure(jobs.send_email, "SMTPRecipientsRefused", "{{'user{n}@example.com': (550, b'5.1.1')}}"),
    Failure(jobs.resize_image, "UnidentifiedImageError", "cannot identify image file '{n}.jpg'"),
    Failure(jobs.resize_image, "MemoryError", "cannot allocate 1.6 GiB for 24000 x 18000 pixels"),
    Failure(jobs.charge_card, "PaymentDeclined", "card declined for order {n}: insufficient_funds"),
    Failure(jobs.charge_card, "ConnectTimeout", "timed out connecting to api.payments.example.com"),
)
CALLS = {  # the line of each job that raised, for its traceback
    "send_email": "smtp.send_message(message)",
    "resize_image": "image = Image.open(path)",
    "charge_card": "gateway.charge(order, amount)",
}
TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.11/site-packages/core/execution.py", line 97, in run_sync
    result = call()
             ^^^^^^
  File "/srv/app/.venv/lib/python3.11/site-packages/core/job.py", line 110, in <lambda>
    return lambda: self.target(*args, **kwargs)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/app/bench/jobs.py", line {line}, in {function}
    {call}
  File "/srv/app/.venv/lib/python3.11/site-packages/httpcore/_sync/connection.py", line 101
    raise exc
{exception_class}: {message}
"""


def customer(n: int) -> str:
    return f"customer:{n % CUSTOMERS}"


def snapshot_names() -> tuple[list[str], list[str]]:
    """The job names and the queues that have snapshots."""
    return [f"bench.jobs.{name}" for name in SNAPSHOT_JOBS], list(SNAPSHOT_QUEUES)


def snapshots_per_day(dash: Dashboard) -> int:
    series = len(SNAPSHOT_JOBS) + len(SNAPSHOT_QUEUES)
    return DAY_S // dash.settings.metrics.snapshot_interval * series


# --- the failed store -----------------------------------------------------------------


def failed_payload(
    dash: Dashboard, kind: Failure, n: int, job_id: str, pushed_at: datetime, batch_id: str | None
) -> str:
    """The signed payload the job had when it failed after a few attempts."""
    prepared = kind.job.options(tags=[customer(n)]).prepare(n)
    body = make_body(prepared, dash.settings.default_connection, job_id=job_id)
    body["pushed_at"] = int(pushed_at.timestamp() * 1000)
    if batch_id is not None:
        body["batch"] = {"id": batch_id, "member": job_id}
    text = json.dumps(body, separators=(",", ":"))
    attempts = 1 + n % 3
    signature = sign(text, dash.settings.signing_keys()[0])
    return envelope(
        text, signature, attempts=attempts, exceptions=attempts, available_at=body["pushed_at"]
    )


def record_failure(dash: Dashboard, n: int, at: datetime, batch_id: str | None = None) -> str:
    """One failed job, its kind picked by ``n``; returns its id."""
    kind = FAILURES[n % len(FAILURES)]
    job_id, message = new_job_id(), kind.message.format(n=n)
    function = kind.job.name.rsplit(".", 1)[-1]
    trace = TRACEBACK.format(
        line=40 + n % 30,
        function=function,
        call=CALLS[function],
        exception_class=kind.exception_class,
        message=message,
    )
    dash.failed.record(
        uuid=job_id,
        connection=dash.settings.default_connection,
        queue=kind.job.definition.options.queue or "default",
        job_name=kind.job.name,
        payload=failed_payload(dash, kind, n, job_id, at - timedelta(seconds=n % 90), batch_id),
        exception_class=kind.exception_class,
        message=message,
        traceback=trace,
        failed_at=at,
    )
    return job_id


def seed_failed(dash: Dashboard, rng: random.Random, count: int, now: datetime) -> str | None:
    """Failures over the past week; returns the id of one of them (None for none)."""
    job_id = None
    for n in range(count):
        job_id = record_failure(dash, n, now - timedelta(seconds=rng.uniform(0, WEEK_S)))
    return job_id


# --- batches --------------------------------------------------------------------------


def seed_batch(
    dash: Dashboard, rng: random.Random, n: int, now: datetime, budget: int
) -> tuple[str, int]:
    """One batch: most finish, some still run, every tenth is cancelled, a quarter have
    failures (at most ``budget``: they count as failed jobs). Returns its id and failures."""
    at = now - timedelta(seconds=rng.uniform(0, WEEK_S))
    total = rng.randint(3, 30)
    record = dash.batches.create(
        id=new_job_id(),
        name=BATCH_NAMES[n % len(BATCH_NAMES)].format(n=n),
        total_jobs=total,
        options={"allow_failures": n % 5 == 0, "continuation": None},
        created_at=at,
    )
    done = total if rng.random() < 0.8 else rng.randint(0, total - 1)
    failures = min(budget, done, rng.randint(1, 3)) if rng.random() < 0.25 else 0
    for k in range(done):
        at += timedelta(seconds=rng.uniform(0.05, 2.0))
        if k < failures:
            failed_id = record_failure(dash, n * 31 + k, at, record.id)
            dash.batches.record_failure(record.id, failed_id, at=at)
        else:
            dash.batches.record_success(record.id, new_job_id(), at=at)
    if n % 10 == 9 and done < total:
        dash.batches.cancel(record.id, at=at)
    return record.id, failures


def seed_batches(
    dash: Dashboard, rng: random.Random, count: int, now: datetime, budget: int
) -> tuple[str, int]:
    """Returns the id of the first batch with failures (else of the last one) and how many
    failed jobs the batches hold."""
    chosen, used, batch_id = "", 0, ""
    for n in range(count):
        batch_id, failures = seed_batch(dash, rng, n, now, budget - used)
        used += failures
        if failures and not chosen:
            chosen = batch_id
    return chosen or batch_id, used


# --- snapshots ------------------------------------------------------------------------


def snapshot(
    kind: MetricKind, name: str, taken_at: datetime, interval_s: int, rng: random.Random
) -> Snapshot:
    """A day-shaped load with noise: busy in the afternoon, quiet at night."""
    hours = taken_at.hour + taken_at.minute / 60
    per_minute = 40 * (1.2 + math.sin((hours - 9) / 24 * 2 * math.pi)) * rng.uniform(0.8, 1.2)
    processed = int(per_minute * interval_s / 60)
    runtime_ms, wait_ms = rng.uniform(5, 40), rng.uniform(2, 50)
    return Snapshot(
        kind=kind.value,
        name=name,
        taken_at=taken_at,
        interval_s=interval_s,
        throughput=processed * 60 / interval_s,
        runtime_avg_ms=runtime_ms,
        runtime_max_ms=runtime_ms * rng.uniform(2, 10),
        wait_p50_ms=wait_ms,
        wait_p95_ms=wait_ms * rng.uniform(2, 6),
        wait_max_ms=wait_ms * rng.uniform(6, 20),
        processed=processed,
        failed=int(processed * rng.uniform(0, 0.02)),
        pushed=max(0, processed + rng.randint(-5, 5)),
    )


def seed_snapshots(dash: Dashboard, rng: random.Random, days: int, now: datetime) -> None:
    """Every interval of the last ``days`` days, for each job name and queue, a day a call."""
    interval_s = dash.settings.metrics.snapshot_interval
    per_day = DAY_S // interval_s
    newest = now - timedelta(seconds=now.timestamp() % interval_s)
    job_names, queues = snapshot_names()
    series = [(MetricKind.JOB, name) for name in job_names]
    series += [(MetricKind.QUEUE, name) for name in queues]
    total = days * per_day
    for first in range(0, total, per_day):
        moments = [
            newest - timedelta(seconds=interval_s * (total - 1 - i))
            for i in range(first, first + per_day)
        ]
        rows = [
            snapshot(kind, name, at, interval_s, rng) for at in moments for kind, name in series
        ]
        dash.snapshots.record(rows)


CLAUDE_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5")


def seed_claude_requests(
    dash: Dashboard, rng: random.Random, count: int, now: datetime
) -> tuple[str, str]:
    """Claude requests over the past day, nine in ten answered, the first tenth in one
    batch, for the AI usage pages; returns an answered request's id and the batch's id."""
    batch_id = new_job_id()
    requests = ClaudeRequestRepository(dash.runtime.engine)
    prices = dash.settings.claude.models
    answered = ""
    for n in range(count):
        model = rng.choice(CLAUDE_MODELS)
        created = now - timedelta(minutes=rng.uniform(1, 24 * 60))
        prompt = [{"role": "user", "content": f"Summarise support ticket {n} in two lines."}]
        batch = batch_id if n < count // 10 else None
        request = NewRequest(model, prompt, max_tokens=1024, temperature=0.0, batch_id=batch)
        record = requests.create(request, now=created)
        if rng.random() < 0.1:
            continue
        requests.processing(record.id, now=created + timedelta(seconds=rng.uniform(0.1, 5)))
        usage = Usage(input_tokens=rng.randint(200, 3000), output_tokens=rng.randint(50, 900))
        response = Response("A summary.", "end_turn", usage, cost_usd(usage, prices[model]))
        requests.completed(record.id, response, now=created + timedelta(seconds=rng.uniform(5, 60)))
        answered = record.id
    return answered, batch_id
