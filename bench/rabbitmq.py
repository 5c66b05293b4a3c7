"""8. RabbitMQ: the drain and ingest benchmarks with RabbitMQ as the Celery broker (issue 13),
each against its baseline on the same RabbitMQ and the same machine, side by side.

The broker is a private RabbitMQ node of the run (:func:`devtools.rabbitmq_node.running_node`:
the machine's ``rabbitmq-server`` on free loopback ports, its own epmd), with the queues
``make_celery`` declares: quorum queues on the ``roomrec`` topic exchange, native delayed
delivery, publisher confirms. Redis (the run's private ``redis-server``) keeps what it keeps
whatever the broker: de-duplication marks, the outbox, done marks, room state.

- **Drain** (:func:`drain_on_rabbitmq`): ``count`` recording-completed events published through
  the web's own broker (:func:`workers.delivery.choice.connect`, the ``KombuBroker``: marks and
  outbox entry, confirmed publish) with no worker running, drained by the real worker with
  ``HANDLERS`` as in the Redis drain (``log,forward`` and ``log,forward,store``), against as
  many no-op tasks (:mod:`bench.noop`, published with ``send_task``) drained by the same worker
  command line. Runs alternate (no-op, subject, no-op, subject, ..., no-op), the subjects'
  order rotating from round to round; each subject run is divided by the mean of the no-op runs
  around it. RabbitMQ's management counts lag (``rabbitmqctl`` reads statistics emitted every
  few seconds), so the drain's end is told from a passive ``queue_declare`` (ready messages,
  exact) polled every 50 ms together with the worker's own log: every task it received has
  ended, and as many events (or no-op tasks) have succeeded as were queued (:func:`is_drained`).
- **Ingest** (:func:`ingest_on_rabbitmq`): signed callbacks through the real endpoint with
  ``CELERY_BROKER_URL=amqp://...`` against bare Flask, the same gunicorn command line and
  server settings and wrk options as :mod:`bench.ingest`, alternating (bare, real; then real,
  bare; ...), paired per round. Before every measured run Redis and the queues are emptied;
  afterwards the events queue must hold one message per accepted callback.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kombu import Connection

from bench import callbacks
from bench.drain import CONCURRENCY, of_noop, stored_rows, task_times
from bench.env import BenchEnv
from bench.ingest import WrkOptions, check_real_run, run_wrk, settle, write_requests
from bench.noop import NOOP_TASK
from bench.procs import server_settings, start_celery, start_gunicorn
from bench.stats import at_least, median, paired_ratio, per_round_ratio, ratio, rounded, shown
from bench.tools import ensure
from devtools.rabbitmq_node import RabbitNode, running_node
from devtools.redis_server import free_port
from schemas import EventMessage, load_callback
from schemas.settings import DEFAULT_DEDUP_TTL
from workers.delivery.celery_app import (
    EVENTS_QUEUE,
    PROCESS_EVENT_TASK,
    QUEUES,
    amqp_queues,
    make_celery,
)
from workers.delivery.choice import connect
from workers.delivery.dedup import event_id
from workers.metadata import Store

log = logging.getLogger(__name__)

POLL = 0.05
NOOP = "noop"
LOG_FORWARD = "log,forward"
LOG_FORWARD_STORE = "log,forward,store"
SUBJECTS = (LOG_FORWARD, LOG_FORWARD_STORE)  # a round's order, rotated each round
DRAIN_TARGET = 0.5  # issue 13: the drain on RabbitMQ against no-op tasks on the same RabbitMQ
INGEST_TARGET = 0.6  # issue 5's ingest target, as on Redis
INGEST_APPS = {"bare": "bench.bare_app:create_app()", "real": "webhooks:create_app()"}


# -- the drain's end, from the worker's log and the queues' ready counts
_TASK_LINE = re.compile(
    r"Task (?P<name>\S+?)\[[^\]]*\] (?P<what>received|succeeded in|raised|retry:|failed)"
)


@dataclass
class WorkerTally:
    """What a worker's log says so far: tasks received, tasks ended (succeeded, failed, raised
    or retried), and successes per task name. :meth:`feed` takes the log's new text in any
    pieces; a line is counted once it is complete."""

    received: int = 0
    ended: int = 0
    succeeded: dict[str, int] = field(default_factory=dict)
    _partial: str = ""

    def feed(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            match = _TASK_LINE.search(line)
            if match is None:
                continue
            if match["what"] == "received":
                self.received += 1
                continue
            self.ended += 1
            if match["what"] == "succeeded in":
                self.succeeded[match["name"]] = self.succeeded.get(match["name"], 0) + 1


def is_drained(ready: Sequence[int], tally: WorkerTally, task: str, expected: int) -> bool:
    """Whether the drain has ended: no message ready on any queue, every task the worker
    received has ended, and ``task`` has succeeded ``expected`` times (a retry waiting in
    RabbitMQ's delayed queues has not succeeded yet, so the drain goes on)."""
    return (
        not any(ready)
        and tally.received == tally.ended
        and tally.succeeded.get(task, 0) >= expected
    )


class LogFollower:
    """The new text of a growing log file, each call to :meth:`read` after the previous one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> str:
        if not self.path.exists():
            return ""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        self.offset += len(data)
        return data.decode(errors="replace")


# -- the broker
@contextmanager
def rabbitmq_node(env: BenchEnv) -> Iterator[RabbitNode]:
    """A private RabbitMQ node in the run's directory, killed (and its data gone) afterwards."""
    with running_node(env.path(f"rabbitmq-{free_port()}")) as node:
        log.info("RabbitMQ node %s on port %d", node.name, node.port)
        yield node


def purge(url: str) -> None:
    """Empty roomrec's queues (declared as ``make_celery`` declares them: quorum queues)."""
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for queue in amqp_queues():
            queue.bind(channel).declare()
            channel.queue_purge(queue.name)


def ready_counts(connection: Connection) -> list[int]:
    """Messages ready on each of roomrec's queues (passive ``queue_declare``: exact, at once)."""
    channel = connection.default_channel
    return [int(channel.queue_declare(queue=name, passive=True).message_count) for name in QUEUES]


# -- drain
def queue_events(env: BenchEnv, url: str, count: int) -> None:
    """``count`` recording-completed events through the web's own broker on RabbitMQ."""
    broker = connect(url, env.redis.url, timeout=5, dedup_ttl=DEFAULT_DEDUP_TTL)
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


def queue_noops(url: str, count: int) -> None:
    """``count`` no-op tasks, published with ``send_task`` (confirmed) on one connection."""
    app = make_celery(url)
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            app.send_task(NOOP_TASK, queue=EVENTS_QUEUE, producer=producer)


def timed_drain(url: str, app: str, config: dict[str, str], log_path: Path, task: str,
                count: int, timeout: float) -> float:  # fmt: skip
    """Seconds from the worker's ``ready`` until :func:`is_drained`."""
    tally, follower = WorkerTally(), LogFollower(log_path)
    worker, ready = start_celery(app, CONCURRENCY, config, log_path)
    try:
        deadline = time.monotonic() + timeout
        with Connection(url, connect_timeout=5) as connection:
            while True:
                tally.feed(follower.read())
                if is_drained(ready_counts(connection), tally, task, count):
                    finished = time.time()
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the drain did not end within {timeout:.0f}s: {tally}")
                time.sleep(POLL)
    finally:
        worker.stop()
    return finished - ready


def drained(kind: str, count: int, seconds: float, log_path: Path, **checks: Any) -> dict[str, Any]:
    log.info("drain on RabbitMQ %s: %d in %.1fs (%.0f/s)", kind, count, seconds, count / seconds)
    return {"kind": kind, "seconds": seconds, "rate": count / seconds, **checks,
            "tasks": task_times(log_path)}  # fmt: skip


def real_drain(env: BenchEnv, url: str, handlers: str, count: int, number: int,
               timeout: float) -> dict[str, Any]:  # fmt: skip
    env.flush()
    purge(url)
    env.receiver.reset()
    database = env.path(f"rabbitmq-drain-{number}.sqlite3")
    storing = "store" in handlers.split(",")
    if storing:
        Store.open(f"sqlite:///{database}").ready()  # migrated before the clock starts
    queue_events(env, url, count)
    log_path = env.path(f"logs/rabbitmq-drain-{handlers.replace(',', '-')}-{number}.log")
    config = env.worker_config(database, HANDLERS=handlers, CELERY_BROKER_URL=url)
    seconds = timed_drain(url, "workers", config, log_path, PROCESS_EVENT_TASK, count, timeout)
    with env.client() as client:
        dead = client.hlen("roomrec:deadletters")
    checks: dict[str, Any] = {"forwarded": env.receiver.stats()["count"], "dead_letters": dead}
    if storing:
        checks["stored"] = stored_rows(database)
    if any(checks[name] != count for name in ("forwarded", "stored") if name in checks) or dead:
        raise RuntimeError(f"drain of {count} events ({handlers}) on RabbitMQ incomplete: {checks}")
    return drained(handlers, count, seconds, log_path, **checks)


def noop_drain(env: BenchEnv, url: str, count: int, number: int, timeout: float) -> dict[str, Any]:
    env.flush()
    purge(url)
    queue_noops(url, count)
    log_path = env.path(f"logs/rabbitmq-drain-noop-{number}.log")
    config = {"REDIS_URL": env.redis.url, "CELERY_BROKER_URL": url}
    seconds = timed_drain(url, "bench.noop", config, log_path, NOOP_TASK, count, timeout)
    return drained(NOOP, count, seconds, log_path)


def schedule(rounds: int) -> list[tuple[str, int]]:
    """The drain's runs in order, (kind, round): a no-op run, then per round each of
    :data:`SUBJECTS` followed by a no-op run, the subjects' order rotating by one each round."""
    runs = [(NOOP, 0)]
    for number in range(rounds):
        shift = number % len(SUBJECTS)
        for kind in SUBJECTS[shift:] + SUBJECTS[:shift]:
            runs += [(kind, number), (NOOP, number)]
    return runs


def drain_on_rabbitmq(env: BenchEnv, url: str, *, rounds: int, events: int,
                      timeout: float) -> dict[str, Any]:  # fmt: skip
    """The runs of :func:`schedule`, each subject run over the no-op runs next to it."""
    env.recordings(events)  # created before any clock starts
    runs = []
    for number, (kind, round_number) in enumerate(schedule(rounds)):
        if kind == NOOP:
            run = noop_drain(env, url, events, number, timeout)
        else:
            run = real_drain(env, url, kind, events, number, timeout)
        runs.append({"order": number + 1, **run, "round": round_number})
    of_noop(runs)
    rate = {kind: median(r["rate"] for r in runs if r["kind"] == kind)
            for kind in (NOOP, *SUBJECTS)}  # fmt: skip
    vs_noop = {kind: paired_ratio(runs, field="kind", subject=kind, value="rate",
                                  baseline=NOOP) for kind in SUBJECTS}  # fmt: skip
    figures: dict[str, Any] = {"noop_tasks_per_s": rounded(rate[NOOP], 1)}
    for kind in SUBJECTS:
        name = kind.replace(",", "_")
        figures[f"{name}_events_per_s"] = rounded(rate[kind], 1)
        figures[f"{name}_vs_noop"] = rounded(vs_noop[kind][0])
        figures[f"{name}_vs_noop_per_run"] = vs_noop[kind][1]
        figures[f"{name}_vs_noop_of_medians"] = rounded(ratio(rate[kind], rate[NOOP]))
    targets = [
        at_least(
            f"drain {kind} events/s vs no-op tasks/s",
            vs_noop[kind][0],
            DRAIN_TARGET,
            "x",
            baseline=f"no-op on RabbitMQ {shown(rate[NOOP])} tasks/s",
            subject=f"{kind.replace(',', '+')} {shown(rate[kind], '.1f')} events/s",
        )
        for kind in SUBJECTS
    ]
    return {"figures": figures, "targets": targets, "runs": runs}


# -- ingest
def ingest_run(env: BenchEnv, url: str, wrk: str, name: str, requests: Path,
               options: WrkOptions) -> dict[str, Any]:  # fmt: skip
    port = free_port()
    log_path = env.path(f"logs/rabbitmq-ingest-{name}-{port}.log")
    web = start_gunicorn(INGEST_APPS[name], port, env.web_config() | {"CELERY_BROKER_URL": url},
                         log_path)  # fmt: skip
    try:
        target = f"http://127.0.0.1:{port}{callbacks.CALLBACK_PATH}"
        if options.warmup:
            run_wrk(wrk, target, requests, options, options.warmup)
            settle(env)  # the requests wrk cut off at its end are still being answered
        env.flush()  # the warm-up's callbacks are forgotten: every measured one is new
        purge(url)
        figures = run_wrk(wrk, target, requests, options, options.seconds)
        if name == "real":
            settle(env)
            with Connection(url, connect_timeout=5) as connection:
                figures["queued"] = ready_counts(connection)[QUEUES.index(EVENTS_QUEUE)]
            accepted = figures["requests"] - figures["status_errors"]
            figures["all_accepted_were_queued"] = figures["queued"] >= accepted
            check_real_run(figures)
    finally:
        web.stop()
    env.flush()
    purge(url)
    log.info("ingest on RabbitMQ %s: %.0f req/s, p50 %.2f ms, p99 %.2f ms", name, figures["rps"],
             figures["p50_us"] / 1000, figures["p99_us"] / 1000)  # fmt: skip
    return {"app": name, **figures}


def ingest_on_rabbitmq(env: BenchEnv, url: str, *, rounds: int, requests: int,
                       options: WrkOptions) -> dict[str, Any]:  # fmt: skip
    wrk = ensure("wrk")
    signed = write_requests(env, requests)
    runs: list[dict[str, Any]] = []
    for number in range(rounds):
        order = [*INGEST_APPS] if number % 2 == 0 else [*INGEST_APPS][::-1]
        for name in order:
            runs.append({"round": number + 1, **ingest_run(env, url, wrk, name, signed, options)})

    def med(app: str, key: str, scale: float = 1.0) -> float | None:
        value = median(run[key] for run in runs if run["app"] == app)
        return None if value is None else value / scale

    rate, rates = per_round_ratio(runs, field="app", subject="real", baseline="bare", value="rps")
    p99, p99s = per_round_ratio(runs, field="app", subject="real", baseline="bare",
                                value="p99_us")  # fmt: skip
    bare_rps, real_rps = med("bare", "rps"), med("real", "rps")
    figures = {
        "bare_rps": rounded(bare_rps, 1),
        "real_rps": rounded(real_rps, 1),
        "bare_p99_ms": rounded(med("bare", "p99_us", 1000)),
        "real_p99_ms": rounded(med("real", "p99_us", 1000)),
        "rate_ratio": rounded(rate),
        "rate_ratios_per_round": rates,
        "p99_ratio": rounded(p99),
        "p99_ratios_per_round": p99s,
        "rate_ratio_of_medians": rounded(ratio(real_rps, bare_rps)),
        "real_errors": sum(run["status_errors"] for run in runs if run["app"] == "real"),
    }
    target = at_least(
        "ingest req/s vs bare Flask",
        rate,
        INGEST_TARGET,
        "x",
        baseline=f"bare Flask {shown(bare_rps)} req/s",
        subject=f"real endpoint, amqp:// broker {shown(real_rps)} req/s",
    )
    return {"figures": figures, "targets": [target], "runs": runs}


def run(env: BenchEnv, *, rounds: int = 3, events: int = 3_000, ingest_rounds: int = 3,
        requests: int = 60_000, options: WrkOptions | None = None,
        timeout: float = 420) -> dict[str, Any]:  # fmt: skip
    """Both, on one private RabbitMQ node; the results side by side."""
    options = options or WrkOptions()
    with rabbitmq_node(env) as node:
        url = node.url()
        drain = drain_on_rabbitmq(env, url, rounds=rounds, events=events, timeout=timeout)
        ingest = ingest_on_rabbitmq(env, url, rounds=ingest_rounds, requests=requests,
                                    options=options)  # fmt: skip
    return {
        "method": {
            "broker": "private rabbitmq-server node (devtools.rabbitmq_node), make_celery's "
            "queues: quorum queues on a topic exchange, publisher confirms",
            "drain_events": events,
            "drain_worker": f"celery worker --pool prefork --concurrency {CONCURRENCY} "
            "--without-mingle --without-gossip --without-heartbeat --loglevel INFO (all)",
            "drain_rounds": "no-op, then log,forward and log,forward,store each followed by a "
            "no-op run, rotating; each subject run over the mean of its neighbouring no-op runs",
            "drain_end": "passive queue_declare ready counts 0, every task received ended, "
            "as many successes as tasks queued (worker log), polled every 50 ms",
            "ingest_gunicorn": server_settings(),
            "ingest_wrk": options.describe(),
            "ingest_rounds": "bare Flask and the real endpoint, alternating, paired per round",
        },
        "figures": {"drain": drain["figures"], "ingest": ingest["figures"]},
        "targets": [*drain["targets"], *ingest["targets"]],
        "runs": {"drain": drain["runs"], "ingest": ingest["runs"]},
    }
