"""Prometheus metrics of the workers, and the functions other modules call to count.

Task durations and outcomes (and retries raised with Celery's ``task.retry``) are recorded from
Celery's signals (:mod:`workers.runtime.signals`). What only the code knows is counted by calling:

- :func:`handler_run` around each attempt of a handler (times it, counts its outcome, and binds
  ``handler`` to the log lines written meanwhile), or :func:`handler_finished` afterwards;
- :func:`retry_scheduled` and :func:`dead_lettered` with the stage (``fetch``, ``validate``,
  ``handler:<name>``) when a retry is scheduled or an event goes to the dead-letter store;
- :func:`archived_bytes` with the size of each archived media file;
- :func:`twilio_response` with the status of each answer of Twilio's REST API.

A prefork worker counts in its pool processes: :func:`enable_multiprocess` switches
prometheus_client to its multiprocess mode (one file per process in a private directory) before
the pool forks, and :func:`start_exporter` serves the merged counts from the main process.
The metrics are made on first use, so the switch takes effect whenever this module was imported.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from workers.observability.logs import bind

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TASK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class _Metrics:
    tasks: Counter
    task_seconds: Histogram
    handlers: Counter
    handler_seconds: Histogram
    retries: Counter
    dead_letters: Counter
    twilio: Counter
    archived: Counter


@cache
def _metrics() -> _Metrics:
    return _Metrics(
        tasks=Counter(
            "roomrec_tasks", "Task runs, by task and outcome (succeeded, retried, failed).",
            ["task", "outcome"],
        ),
        task_seconds=Histogram(
            "roomrec_task_duration_seconds", "Time a task ran, by task.", ["task"],
            buckets=TASK_BUCKETS,
        ),
        handlers=Counter(
            "roomrec_handler_runs", "Handler attempts, by handler and outcome.",
            ["handler", "outcome"],
        ),
        handler_seconds=Histogram(
            "roomrec_handler_duration_seconds", "Time a handler run took, by handler.",
            ["handler"], buckets=TASK_BUCKETS,
        ),
        retries=Counter(
            "roomrec_retries", "Retries scheduled, by stage (fetch, handler:<name>).", ["stage"]
        ),
        dead_letters=Counter(
            "roomrec_dead_letters", "Events put in the dead-letter store, by stage.", ["stage"]
        ),
        twilio=Counter(
            "roomrec_twilio_responses", "Answers of Twilio's REST API, by HTTP status.",
            ["status"],
        ),
        archived=Counter("roomrec_archived_bytes", "Bytes of media archived."),
    )  # fmt: skip


_known_handlers: frozenset[str] = frozenset()
_task = threading.local()  # whether the running task counted its retry itself


def set_known_handlers(names: Iterable[str]) -> None:
    """The handler names used as label values; any other name is counted as ``unknown``
    (a label value read from a message must not grow the number of series without bound)."""
    global _known_handlers
    _known_handlers = frozenset(names)


def handler_label(name: object) -> str:
    return name if isinstance(name, str) and name in _known_handlers else UNKNOWN


def stage_label(stage: str) -> str:
    """Stages are named by the code; only ``handler:<name>`` carries a name from a message,
    and becomes ``handler:unknown`` for a handler this worker is not configured with."""
    if stage.startswith("handler:"):
        return "handler:" + handler_label(stage.removeprefix("handler:"))
    return stage


# --- called by the code -------------------------------------------------------------------


class handler_run:  # lower case: used like a function, ``with handler_run(name) as run:``
    """Times one attempt of handler ``name`` and counts it with ``run.outcome`` on exit
    (``succeeded`` if left unset, ``failed`` if an exception escapes); the log lines written
    meanwhile carry ``handler``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.outcome: str | None = None

    def __enter__(self) -> handler_run:
        self._bound = bind(handler=self.name)
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            outcome = self.outcome or ("failed" if kind is not None else "succeeded")
            handler_finished(self.name, outcome, time.perf_counter() - self._started)
        finally:
            self._bound.unbind()


def handler_finished(name: str, outcome: str, seconds: float) -> None:
    """Count one attempt of handler ``name`` that took ``seconds`` and ended in ``outcome``
    (``succeeded``, ``gone``, ``retrying``, ``dead-lettered``, ``paused`` ...)."""
    label = handler_label(name)
    metrics = _metrics()
    metrics.handlers.labels(label, outcome).inc()
    metrics.handler_seconds.labels(label).observe(seconds)


def dead_lettered(stage: str) -> None:
    """Count one event put in the dead-letter store at ``stage``."""
    _metrics().dead_letters.labels(stage_label(stage)).inc()


def retry_scheduled(stage: str) -> None:
    """Count one retry scheduled at ``stage`` (``fetch``, ``handler:<name>``). A retry raised
    with Celery's ``task.retry`` after this call is not counted twice."""
    _metrics().retries.labels(stage_label(stage)).inc()
    _task.retry_counted = True


def archived_bytes(n: int) -> None:
    """Count ``n`` bytes of media archived."""
    if n > 0:
        _metrics().archived.inc(n)


def twilio_response(status: int) -> None:
    """Count one answer of Twilio's REST API with HTTP ``status``."""
    label = str(status) if 100 <= status <= 599 else UNKNOWN
    _metrics().twilio.labels(label).inc()


# --- called from Celery's signals ---------------------------------------------------------


def task_started() -> None:
    _task.retry_counted = False


def celery_retry(stage: str) -> None:
    """Celery's ``task_retry`` signal: counted unless :func:`retry_scheduled` counted it."""
    if not getattr(_task, "retry_counted", False):
        retry_scheduled(stage)


def task_finished(task: str, state: str | None, seconds: float) -> None:
    """One run of ``task`` ended in Celery ``state`` (``succeeded``, ``retried``, ``failed``)
    after ``seconds``."""
    outcome = _STATES.get(state or "", UNKNOWN)
    metrics = _metrics()
    metrics.tasks.labels(task, outcome).inc()
    metrics.task_seconds.labels(task).observe(seconds)


_STATES = {"SUCCESS": "succeeded", "RETRY": "retried", "FAILURE": "failed", "REJECTED": "failed"}


# --- multiprocess mode and the exporter ---------------------------------------------------


def enable_multiprocess(path: str) -> None:
    """Count in files under ``path`` from now on, in this process and those it forks.

    prometheus_client chooses its value class once, when imported, from the environment; a
    worker decides at start-up, later, hence the class is chosen again here. Metrics are made
    on first use (:func:`_metrics`), after this.
    """
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()


def process_exited(pid: int) -> None:
    """Bookkeeping for a pool process that ended (its live gauges go)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        mark_process_dead(pid, path)


def exporter_registry(path: str, *extra: Any) -> CollectorRegistry:
    """The counts of every process writing under ``path``, plus ``extra`` collectors."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    for collector in extra:
        registry.register(collector)
    return registry


def start_exporter(port: int, registry: CollectorRegistry, addr: str = "0.0.0.0") -> Any:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread; the server, or
    ``None`` (logged) when the port cannot be bound."""
    try:
        server, _thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        log.error("metrics exporter not started: METRICS_PORT %d: %s", port, exc)
        return None
    log.info("metrics exporter listening on %s:%d", addr, port)
    return server
