"""2. End-to-end drain: events already queued, each fetched from the emulator (no injected
latency) and handed to ``log``, ``forward`` (to the bare receiver) and ``store`` (SQLite in
the run's directory, migrated beforehand), against the rate at which the same worker command
line drains as many no-op Celery tasks.

The real events are queued through the real :class:`workers.enqueue.Enqueuer` with no worker
running; the no-op tasks are the very message ``send_task`` would publish, LPUSHed in
batches. The clock runs from the moment the worker logs ``ready`` to the moment nothing is
left: both queues empty, nothing unacknowledged, no retry waiting (polled every 50 ms). Then
every event must have reached the receiver and the store, with no dead letter. Every real
run sits between two no-op runs (no-op, real, no-op, …); a second real run is made only when
the first ended within the time budget, to keep ``make bench`` near ten minutes. The worker's
own log gives, per task name, how long tasks ran: where the time went.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import callbacks
from bench.env import BenchEnv
from bench.noop import queue_noops
from bench.procs import start_celery
from bench.stats import (
    at_least,
    median,
    paired_ratio,
    percentile,
    ratio,
    rounded,
    sandwich,
    shown,
)
from schemas import EventMessage, load_callback
from workers.enqueue import Enqueuer, event_id
from workers.store import Store

log = logging.getLogger(__name__)

CONCURRENCY = 2
POLL = 0.05


def queue_events(env: BenchEnv, count: int) -> None:
    """``count`` recording-completed events through the web's own enqueuer."""
    enqueuer = Enqueuer.from_urls(env.redis.url, env.redis.url, timeout=5)
    now = datetime.now(UTC)
    try:
        for recording in env.recordings(count):
            params = callbacks.completed_params(recording, now)
            message = EventMessage(
                id=event_id(params), event=load_callback(params), received_at=now
            )
            if not enqueuer.enqueue(message):
                raise RuntimeError(f"{message.id} was refused as a duplicate")
    finally:
        enqueuer.close()


def wait_until_idle(env: BenchEnv, timeout: float) -> float:
    """``time.time()`` when nothing is queued, unacknowledged or delayed any more."""
    deadline = time.monotonic() + timeout
    while not env.queue_idle():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the queue was not drained within {timeout:.0f}s")
        time.sleep(POLL)
    return time.time()


_SUCCEEDED = re.compile(r"Task (\S+?)\[[^\]]*\] succeeded in ([0-9.eE+-]+)s")


def task_times(log_path: Path) -> dict[str, dict[str, float | None]]:
    """Per task name, from the worker's INFO lines: count, total, p50 and p99 of the time each
    task ran (Celery's own measure), in ms; where the drain's time went."""
    found: dict[str, list[float]] = {}
    with log_path.open(errors="replace") as lines:
        for line in lines:
            match = _SUCCEEDED.search(line)
            if match:
                found.setdefault(match.group(1), []).append(float(match.group(2)) * 1000)
    return {
        name: {
            "count": len(values),
            "total_s": round(sum(values) / 1000, 2),
            "p50_ms": rounded(percentile(values, 50), 2),
            "p99_ms": rounded(percentile(values, 99), 2),
        }  # fmt: skip
        for name, values in found.items()
    }


def stored_rows(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM recordings").fetchone()[0])


def real_round(env: BenchEnv, count: int, number: int, timeout: float) -> dict[str, Any]:
    env.flush()
    env.receiver.reset()
    database = env.path(f"drain-{number}.sqlite3")
    Store.open(f"sqlite:///{database}").ready()  # migrated before the clock starts
    queue_events(env, count)
    config = env.worker_config(database)
    log_path = env.path(f"logs/drain-real-{number}.log")
    worker, ready = start_celery("workers", CONCURRENCY, config, log_path)
    try:
        finished = wait_until_idle(env, timeout)
        env.sample_memory("celery", worker, "drain")
    finally:
        worker.stop()
    received = env.receiver.stats()
    with env.client() as client:
        dead = client.hlen("roomrec:deadletters")
    checks = {"forwarded": received["count"], "stored": stored_rows(database), "dead_letters": dead}
    if checks["forwarded"] != count or checks["stored"] != count or dead:
        raise RuntimeError(f"drain of {count} events incomplete: {checks}")
    seconds = finished - ready
    log.info("drain real: %d events in %.1fs (%.0f/s)", count, seconds, count / seconds)
    return {"kind": "real", "seconds": seconds, "rate": count / seconds, **checks,
            "tasks": task_times(log_path)}  # fmt: skip


def noop_round(env: BenchEnv, count: int, number: int, timeout: float) -> dict[str, Any]:
    env.flush()
    with env.client() as client:
        queue_noops(client, count)
    config = {"REDIS_URL": env.redis.url}
    log_path = env.path(f"logs/drain-noop-{number}.log")
    worker, ready = start_celery("bench.noop", CONCURRENCY, config, log_path)
    try:
        finished = wait_until_idle(env, timeout)
    finally:
        worker.stop()
    seconds = finished - ready
    log.info("drain no-op: %d tasks in %.1fs (%.0f/s)", count, seconds, count / seconds)
    return {"kind": "noop", "seconds": seconds, "rate": count / seconds,
            "tasks": task_times(log_path)}  # fmt: skip


def run(env: BenchEnv, *, rounds: int = 2, events: int = 10_000, timeout: float = 420,
        budget: float = 240) -> dict[str, Any]:  # fmt: skip
    env.recordings(events)  # created before any clock starts
    runs = sandwich(
        lambda number: noop_round(env, events, number, timeout),
        lambda number: real_round(env, events, number, timeout),
        rounds=rounds,
        budget=budget,
    )
    noop_rate = median(run["rate"] for run in runs if run["kind"] == "noop")
    real_rate = median(run["rate"] for run in runs if run["kind"] == "real")
    drain_ratio, ratios = paired_ratio(runs, field="kind", subject="real", value="rate")
    return {
        "method": {
            "events": events,
            "worker": f"celery worker --pool prefork --concurrency {CONCURRENCY} "
            "--without-mingle --without-gossip --without-heartbeat --loglevel INFO (both)",
            "handlers": "log,forward,store (forward to a bare local receiver, store in SQLite)",
            "emulator_latency_ms": 0,
        },
        "figures": {
            "noop_tasks_per_s": rounded(noop_rate, 1),
            "real_events_per_s": rounded(real_rate, 1),
            "ratio": rounded(drain_ratio),
            "ratios_per_real_run": ratios,
            "ratio_of_medians": rounded(ratio(real_rate, noop_rate)),
        },
        "targets": [
            at_least(
                "events/s vs no-op tasks/s",
                drain_ratio,
                0.5,
                "x",
                baseline=f"no-op {shown(noop_rate)} tasks/s",
                subject=f"log+forward+store {shown(real_rate, '.1f')} events/s",
            ),
        ],
        "runs": runs,
    }
