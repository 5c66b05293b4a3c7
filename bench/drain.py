"""2. End-to-end drain: events already queued, each fetched from the emulator (no injected
latency) and handed to ``log`` and ``forward`` (to the bare receiver), and in a second subject
to ``store`` too (SQLite in the run's directory, migrated beforehand), against two baselines
drained by the same worker command line: as many no-op Celery tasks, and the floor
(:mod:`bench.floor_worker`: the same events, each only fetched from the emulator and its
bytes posted to the receiver, signed as Standard Webhooks asks).

The real events are queued through the web's real broker (:func:`workers.delivery.choice.connect`)
with no worker running; the no-op and floor tasks are the very message ``send_task`` would
publish, LPUSHed in batches. The clock runs from the moment the worker logs ``ready`` to the
moment nothing is left: both queues empty, nothing unacknowledged, no retry waiting (polled
every 50 ms). Then every event must have reached the receiver (and the store), with no dead
letter.

A round runs the floor, ``log,forward`` and ``log,forward,store``, the order rotating from
round to round, each between two no-op runs (no-op, A, no-op, B, no-op, C, no-op). Each
subject run is divided by the mean of the no-op runs around it; its ratio to the floor is
that figure divided by the floor's in the same round, and the figure reported is the median
over the rounds. A further round runs only while the time budget lasts. The worker's own log
gives, per task name, how long tasks ran: where the time went.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable
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
    per_round_ratio,
    percentile,
    ratio,
    reference,
    rounded,
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
FLOOR = "floor"
LOG_FORWARD = "log,forward"
LOG_FORWARD_STORE = "log,forward,store"
SUBJECTS = (FLOOR, LOG_FORWARD, LOG_FORWARD_STORE)  # a round's order, rotated each round
# The issue's targets, against the floor; and issue 5's, against the no-op tasks.
FLOOR_TARGETS = {LOG_FORWARD: 0.85, LOG_FORWARD_STORE: 0.7}
NOOP_TARGET = 0.5


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


def real_round(env: BenchEnv, handlers: str, count: int, number: int,
               timeout: float) -> dict[str, Any]:  # fmt: skip
    """The service with ``HANDLERS=handlers`` draining ``count`` events."""
    env.flush()
    env.receiver.reset()
    database = env.path(f"drain-{number}.sqlite3")
    storing = "store" in handlers.split(",")
    if storing:
        Store.open(f"sqlite:///{database}").ready()  # migrated before the clock starts
    queue_events(env, count)
    log_path = env.path(f"logs/drain-{handlers.replace(',', '-')}-{number}.log")
    config = env.worker_config(database, HANDLERS=handlers)
    seconds = timed_drain(env, "workers", config, log_path, timeout, sample=storing)
    received = env.receiver.stats()
    with env.client() as client:
        dead = client.hlen("roomrec:deadletters")
    checks = {"forwarded": received["count"], "dead_letters": dead}
    if storing:
        checks["stored"] = stored_rows(database)
    if any(checks[name] != count for name in ("forwarded", "stored") if name in checks) or dead:
        raise RuntimeError(f"drain of {count} events ({handlers}) incomplete: {checks}")
    return drained(handlers, count, seconds, log_path, **checks)


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
    return drained(FLOOR, count, seconds, log_path, forwarded=forwarded)


def noop_round(env: BenchEnv, count: int, number: int, timeout: float) -> dict[str, Any]:
    env.flush()
    with env.client() as client:
        queue_noops(client, count)
    log_path = env.path(f"logs/drain-noop-{number}.log")
    seconds = timed_drain(env, "bench.noop", {"REDIS_URL": env.redis.url}, log_path, timeout)
    return drained("noop", count, seconds, log_path)


def rounds_of(
    subject: Callable[[str, int], dict[str, Any]],
    noop: Callable[[int], dict[str, Any]],
    *,
    rounds: int,
    budget: float,
    minimum: int = 1,
) -> list[dict[str, Any]]:
    """no-op, then per round each of :data:`SUBJECTS` followed by a no-op run, the order
    rotating by one each round; a round starts only while ``budget`` seconds have not gone by
    (after ``minimum`` rounds). Each run gets its ``round`` and ``order``."""
    started = time.monotonic()
    runs = [noop(0) | {"round": 0}]
    number = 0
    for round_number in range(rounds):
        if round_number >= minimum and time.monotonic() - started > budget:
            break
        shift = round_number % len(SUBJECTS)
        for kind in SUBJECTS[shift:] + SUBJECTS[:shift]:
            number += 1
            runs.append(subject(kind, number) | {"round": round_number})
            runs.append(noop(number) | {"round": round_number})
    return [{"order": index + 1, **run} for index, run in enumerate(runs)]


def of_noop(runs: list[dict[str, Any]]) -> None:
    """Each subject run's rate divided by the mean of the no-op runs around it
    (``vs_noop``; None for the no-op runs)."""
    for index, run in enumerate(runs):
        if run["kind"] == "noop":
            run["vs_noop"] = None
            continue
        near = [runs[i]["rate"] for i in (index - 1, index + 1)
                if 0 <= i < len(runs) and runs[i]["kind"] == "noop"]  # fmt: skip
        run["vs_noop"] = run["rate"] / (sum(near) / len(near)) if near else None


def run(env: BenchEnv, *, rounds: int = 3, events: int = 5_000, timeout: float = 420,
        budget: float = 240) -> dict[str, Any]:  # fmt: skip
    env.recordings(events)  # created before any clock starts

    def subject(kind: str, number: int) -> dict[str, Any]:
        if kind == FLOOR:
            return floor_round(env, events, number, timeout)
        return real_round(env, kind, events, number, timeout)

    runs = rounds_of(subject, lambda number: noop_round(env, events, number, timeout),
                     rounds=rounds, budget=budget)  # fmt: skip
    of_noop(runs)
    rate = {kind: median(r["rate"] for r in runs if r["kind"] == kind)
            for kind in ("noop", *SUBJECTS)}  # fmt: skip
    vs_noop = {kind: paired_ratio(runs, field="kind", subject=kind, value="rate",
                                  baseline="noop") for kind in SUBJECTS}  # fmt: skip
    vs_floor = {kind: per_round_ratio(runs, field="kind", subject=kind, baseline=FLOOR,
                                      value="vs_noop") for kind in FLOOR_TARGETS}  # fmt: skip
    figures: dict[str, Any] = {"noop_tasks_per_s": rounded(rate["noop"], 1)}
    for kind in SUBJECTS:
        name = kind.replace(",", "_")
        figures[f"{name}_events_per_s"] = rounded(rate[kind], 1)
        figures[f"{name}_vs_noop"] = rounded(vs_noop[kind][0])
        figures[f"{name}_vs_noop_per_run"] = vs_noop[kind][1]
        if kind in vs_floor:
            figures[f"{name}_vs_floor"] = rounded(vs_floor[kind][0])
            figures[f"{name}_vs_floor_per_round"] = vs_floor[kind][1]
            figures[f"{name}_vs_floor_of_medians"] = rounded(ratio(rate[kind], rate[FLOOR]))
    floor_rate = f"{shown(rate[FLOOR], '.1f')} events/s"
    return {
        "method": {
            "events": events,
            "worker": f"celery worker --pool prefork --concurrency {CONCURRENCY} "
            "--without-mingle --without-gossip --without-heartbeat --loglevel INFO (all)",
            "subjects": f"{LOG_FORWARD} and {LOG_FORWARD_STORE} (forward to a bare local "
            "receiver, store in SQLite)",
            "emulator_latency_ms": 0,
            "floor": "bench.floor: GET the recording, POST its bytes to the receiver signed "
            "with standardwebhooks; nothing else (one keep-alive http.client connection per "
            "host and pool process)",
            "rounds": "floor, log,forward, log,forward,store, rotating, each between no-op runs",
            "vs_floor": "per round: the subject's rate over the mean of its neighbouring no-op "
            "runs, divided by the floor's; the median over the rounds",
        },
        "figures": figures,
        "targets": [
            *(
                at_least(
                    f"{kind} events/s vs the floor",
                    vs_floor[kind][0],
                    limit,
                    "x",
                    baseline=f"floor {floor_rate}",
                    subject=f"{kind} {shown(rate[kind], '.1f')} events/s",
                )
                for kind, limit in FLOOR_TARGETS.items()
            ),
            at_least(
                "events/s vs no-op tasks/s",
                vs_noop[LOG_FORWARD_STORE][0],
                NOOP_TARGET,
                "x",
                baseline=f"no-op {shown(rate['noop'])} tasks/s",
                subject=f"log+forward+store {shown(rate[LOG_FORWARD_STORE], '.1f')} events/s",
            ),
        ],
        "references": [
            reference(
                "floor events/s vs no-op tasks/s",
                vs_noop[FLOOR][0],
                "x",
                meaning=f"the floor (fetch and signed forward only, {floor_rate}): the most "
                "any worker that fetches and forwards each event reaches here",
            ),
            reference(
                f"{LOG_FORWARD} events/s vs no-op tasks/s",
                vs_noop[LOG_FORWARD][0],
                "x",
                meaning=f"{shown(rate[LOG_FORWARD], '.1f')} events/s; against the floor it "
                "is what validation, the log line, done marks, the room tracker and the ledger "
                "leave of the floor's rate",
            ),
        ],
        "runs": runs,
    }
