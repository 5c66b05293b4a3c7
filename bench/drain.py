"""2. End-to-end drain: events already queued, each fetched from the emulator (no injected
latency) and handed to ``log``, ``forward`` (to the bare receiver) and ``store`` (SQLite in
the run's directory, migrated beforehand), against the rate at which the same worker command
line drains as many no-op Celery tasks.

The real events are queued through the web's real broker (:func:`workers.delivery.choice.connect`)
with no worker running; the no-op tasks are the very message ``send_task`` would publish,
LPUSHed in batches. The clock runs from the moment the worker logs ``ready`` to the moment
nothing is left: both queues empty, nothing unacknowledged, no retry waiting (polled every
50 ms). Then every event must have reached the receiver and the store, with no dead letter. Every
real run sits between two no-op runs (no-op, real, no-op, …); a second real run is made only
when the first ended within the time budget, to keep ``make bench`` near ten minutes. The
worker's own log gives, per task name, how long tasks ran: where the time went.

Between the two real runs, sandwiched the same way, runs the floor (:mod:`bench.floor_worker`):
the same events, each only fetched from the emulator and its bytes posted to the receiver. Its
rate against the no-op tasks bounds the ratio any implementation can reach on the machine at
hand.
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
from bench.floor_worker import queue_floor
from bench.noop import queue_noops
from bench.procs import start_celery
from bench.stats import (
    at_least,
    median,
    paired_ratio,
    percentile,
    ratio,
    reference,
    rounded,
    sandwich,
    shown,
)
from schemas import EventMessage, load_callback
from schemas.settings import DEFAULT_DEDUP_TTL
from workers.delivery.choice import connect
from workers.delivery.dedup import event_id
from workers.metadata import Store

log = logging.getLogger(__name__)

CONCURRENCY = 2
POLL = 0.05


def queue_events(env: BenchEnv, count: int) -> None:
    """``count`` recording-completed events through the web's own broker."""
    broker = connect(env.redis.url, env.redis.url, timeout=5, dedup_ttl=DEFAULT_DEDUP_TTL)
    now = datetime.now(UTC)
    try:
        for recording in env.recordings(count):
            params = callbacks.completed_params(recording, now)
            message = EventMessage(
                id=event_id(params), event=load_callback(params), received_at=now
            )
            if not broker.enqueue(message):
                raise RuntimeError(f"{message.id} was refused as a duplicate")
    finally:
        broker.close()


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


def timed_drain(env: BenchEnv, app: str, config: dict[str, str], log_path: Path,
                timeout: float, *, sample: bool = False) -> float:  # fmt: skip
    """Seconds from the worker's ``ready`` until nothing is left (``sample``: note its memory)."""
    worker, ready = start_celery(app, CONCURRENCY, config, log_path)
    try:
        finished = wait_until_idle(env, timeout)
        if sample:
            env.sample_memory("celery", worker, "drain")
    finally:
        worker.stop()
    return finished - ready


def drained(kind: str, count: int, seconds: float, log_path: Path, **checks: Any) -> dict[str, Any]:
    log.info("drain %s: %d in %.1fs (%.0f/s)", kind, count, seconds, count / seconds)
    return {"kind": kind, "seconds": seconds, "rate": count / seconds, **checks,
            "tasks": task_times(log_path)}  # fmt: skip


def real_round(env: BenchEnv, count: int, number: int, timeout: float) -> dict[str, Any]:
    env.flush()
    env.receiver.reset()
    database = env.path(f"drain-{number}.sqlite3")
    Store.open(f"sqlite:///{database}").ready()  # migrated before the clock starts
    queue_events(env, count)
    log_path = env.path(f"logs/drain-real-{number}.log")
    seconds = timed_drain(env, "workers", env.worker_config(database), log_path, timeout,
                          sample=True)  # fmt: skip
    received = env.receiver.stats()
    with env.client() as client:
        dead = client.hlen("roomrec:deadletters")
    checks = {"forwarded": received["count"], "stored": stored_rows(database), "dead_letters": dead}
    if checks["forwarded"] != count or checks["stored"] != count or dead:
        raise RuntimeError(f"drain of {count} events incomplete: {checks}")
    return drained("real", count, seconds, log_path, **checks)


def floor_round(env: BenchEnv, count: int, number: int, timeout: float) -> dict[str, Any]:
    env.flush()
    env.receiver.reset()
    with env.client() as client:
        queue_floor(client, [(r.room_sid, r.sid, r.event_id) for r in env.recordings(count)])
    config = env.worker_config(env.path("floor-unused.sqlite3"), HANDLERS="log")
    log_path = env.path(f"logs/drain-floor-{number}.log")
    seconds = timed_drain(env, "bench.floor_worker", config, log_path, timeout)
    forwarded = env.receiver.stats()["count"]
    if forwarded != count:
        raise RuntimeError(f"the floor forwarded {forwarded} of {count} events")
    return drained("floor", count, seconds, log_path, forwarded=forwarded)


def noop_round(env: BenchEnv, count: int, number: int, timeout: float) -> dict[str, Any]:
    env.flush()
    with env.client() as client:
        queue_noops(client, count)
    log_path = env.path(f"logs/drain-noop-{number}.log")
    seconds = timed_drain(env, "bench.noop", {"REDIS_URL": env.redis.url}, log_path, timeout)
    return drained("noop", count, seconds, log_path)


def run(env: BenchEnv, *, rounds: int = 2, events: int = 10_000, timeout: float = 420,
        budget: float = 240) -> dict[str, Any]:  # fmt: skip
    env.recordings(events)  # created before any clock starts
    subjects = [real_round, floor_round] + [real_round] * (rounds - 1)  # real, floor, real, …
    runs = sandwich(
        lambda number: noop_round(env, events, number, timeout),
        lambda number: subjects[number](env, events, number, timeout),
        rounds=len(subjects),
        budget=budget,
        minimum=2,  # the real run and the floor
    )
    noop_rate = median(run["rate"] for run in runs if run["kind"] == "noop")
    real_rate = median(run["rate"] for run in runs if run["kind"] == "real")
    floor_rate = median(run["rate"] for run in runs if run["kind"] == "floor")
    drain_ratio, ratios = paired_ratio(
        runs, field="kind", subject="real", value="rate", baseline="noop"
    )
    floor_ratio, floor_ratios = paired_ratio(
        runs, field="kind", subject="floor", value="rate", baseline="noop"
    )
    return {
        "method": {
            "events": events,
            "worker": f"celery worker --pool prefork --concurrency {CONCURRENCY} "
            "--without-mingle --without-gossip --without-heartbeat --loglevel INFO (both)",
            "handlers": "log,forward,store (forward to a bare local receiver, store in SQLite)",
            "emulator_latency_ms": 0,
            "floor": "bench.floor: GET the recording, POST its bytes to the receiver; nothing "
            "else (one keep-alive requests.Session per pool process)",
        },
        "figures": {
            "noop_tasks_per_s": rounded(noop_rate, 1),
            "real_events_per_s": rounded(real_rate, 1),
            "ratio": rounded(drain_ratio),
            "ratios_per_real_run": ratios,
            "ratio_of_medians": rounded(ratio(real_rate, noop_rate)),
            "floor_events_per_s": rounded(floor_rate, 1),
            "floor_ratio": rounded(floor_ratio),
            "floor_ratios": floor_ratios,
            "real_of_floor": rounded(ratio(real_rate, floor_rate)),
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
        "references": [
            reference(
                "floor events/s vs no-op tasks/s",
                floor_ratio,
                "x",
                meaning=f"the floor (fetch and forward only, {shown(floor_rate, '.1f')} "
                "events/s): the most any worker that fetches and forwards each event reaches here",
            ),
            reference(
                "real events/s vs the floor",
                ratio(real_rate, floor_rate),
                "x",
                meaning="what validation, signing, the store, the log handler, done marks and "
                "the ledger leave of the floor's rate",
            ),
        ],
        "runs": runs,
    }
