"""Prometheus metrics of the web, and ``GET /metrics``.

Everything is read from the request and its answer in request hooks; the callback view knows
nothing of it:

- ``roomrec_callbacks_total{event, outcome, status}``: ``event`` is the request's
  ``StatusCallbackEvent`` when it names a known event, else ``unknown`` (a label must not take
  any value a client sends); ``outcome`` is ``accepted``, ``duplicate``, ``spooled``, the
  problem's slug for a 4xx (``invalid-signature``, ``invalid-parameters`` ...),
  ``unavailable`` for a 503 and ``error`` for any other 5xx.
- ``roomrec_callback_ack_seconds{status}``: from the first request hook to the answer.

The same hook binds the callback's event and SIDs to the request's log lines.

Under gunicorn's several processes the counts live in files under ``PROMETHEUS_MULTIPROC_DIR``
(``gunicorn.conf.py`` prepares it) and ``/metrics`` merges every process's, plus the queue depth
read from the broker at each scrape and the spool's depth (``roomrec_spool_events``, beside its
bound ``roomrec_spool_max_events``) read from the spool file, which every process shares: a
value sampled at the scrape, so no per-process gauge file (``multiprocess_mode``) to merge.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from time import perf_counter
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from werkzeug.datastructures import Headers

from schemas.settings import WebSettings
from webhooks.intake.context import UNKNOWN
from webhooks.intake.spool import Spool
from webhooks.intake.state import intake_state
from webhooks.intake.views import CALLBACK_PATH, DUPLICATE_HEADER, SPOOLED_HEADER
from workers.service.health import QueueDepthCollector
from workers.service.observability import MULTIPROC_ENV, bind

METRICS_PATH = "/metrics"
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_QUEUE_KEY = "roomrec.queue_metrics"
_SLUG = re.compile(r"[a-z0-9-]{1,50}")
_DUPLICATE, _SPOOLED = DUPLICATE_HEADER.lower(), SPOOLED_HEADER.lower()

CALLBACKS = Counter(
    "roomrec_callbacks",
    "Room status callbacks answered, by event, outcome and HTTP status.",
    ["event", "outcome", "status"],
)
ACK_SECONDS = Histogram(
    "roomrec_callback_ack_seconds",
    "Time from receiving a callback to answering it, by HTTP status.",
    ["status"],
    buckets=ACK_BUCKETS,
)

bp = Blueprint("metrics", __name__)


def register(app: Flask, settings: WebSettings) -> None:
    """Count ``app``'s callbacks and serve ``GET /metrics``."""
    app.before_request(_started)
    app.after_request(_answered)
    app.teardown_request(_finished)
    app.extensions[_QUEUE_KEY] = QueueDepthCollector.for_broker(
        settings.broker_url, timeout=settings.enqueue_timeout, sentinel=settings.redis_sentinel
    )
    app.register_blueprint(bp)


@bp.get(METRICS_PATH)
def metrics() -> Response:
    """Every process's counts and the queue depth, in the format the scraper asks for."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    queue: QueueDepthCollector | None = current_app.extensions.get(_QUEUE_KEY)
    spool = SpoolDepthCollector(intake_state().spool)
    return Response(encode(_registry(queue, spool)), content_type=content_type)


class SpoolDepthCollector(Collector):
    """``roomrec_spool_events`` (callbacks waiting in the local spool for the queue) and
    ``roomrec_spool_max_events`` (``SPOOL_MAX_EVENTS``), read when Prometheus scrapes."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "roomrec_spool_events",
            "Callbacks kept in the local spool, waiting for the queue.",
            value=self.spool.pending(),
        )
        yield GaugeMetricFamily(
            "roomrec_spool_max_events",
            "How many callbacks the spool may hold (SPOOL_MAX_EVENTS); beyond, 503 spool-full.",
            value=self.spool.max_events,
        )


def _registry(*extra: Collector | None) -> Collector:
    path = os.environ.get(MULTIPROC_ENV)
    if path:  # the counts of this process alone would be a fraction: merge the files
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        for collector in extra:
            if collector is not None:
                registry.register(collector)
        return registry
    return _Both(REGISTRY, *extra)


class _Both(Collector):
    def __init__(self, *collectors: Collector | None) -> None:
        self.collectors = [collector for collector in collectors if collector is not None]

    def collect(self) -> Iterator[Any]:
        for collector in self.collectors:
            yield from collector.collect()


def outcome(status: int, headers: Headers | Mapping[str, str], problem_type: str | None) -> str:
    """The ``outcome`` label of an answer (see the module's docstring)."""
    if status < 300:
        # One pass over the (two or three) headers: a werkzeug lookup that misses raises and
        # catches a KeyError, which costs more than the whole scan.
        flags = {name.lower() for name, value in headers.items() if value}
        if _DUPLICATE in flags:
            return "duplicate"
        return "spooled" if _SPOOLED in flags else "accepted"
    if status == 503:
        return "unavailable"
    if status >= 500:
        return "error"
    slug = (problem_type or "").rstrip("/").rpartition("/")[2]
    return slug if _SLUG.fullmatch(slug) else f"http-{status}"


def _started() -> None:
    g.roomrec_started = perf_counter()


def _answered(response: Response) -> Response:
    started = g.pop("roomrec_started", None)
    if started is None or request.path != CALLBACK_PATH:
        return response
    status = response.status_code
    problem_type = None
    if 400 <= status < 500 and not response.is_streamed and response.is_json:
        try:
            problem_type = json.loads(response.get_data()).get("type")
        except (ValueError, AttributeError):
            problem_type = None
    if not isinstance(problem_type, str):
        problem_type = None
    label = outcome(status, response.headers, problem_type)
    counted, timed = _series(g.get("roomrec_event", UNKNOWN), label, status)
    counted.inc()
    timed.observe(perf_counter() - started)
    return response


@functools.cache
def _series(event: str, outcome: str, status: int) -> tuple[Counter, Histogram]:
    """The counter and the histogram of one set of labels. ``labels()`` costs as much as the
    increment itself; every label is bounded, so is this cache."""
    return CALLBACKS.labels(event, outcome, str(status)), ACK_SECONDS.labels(str(status))


def _finished(_exc: BaseException | None = None) -> None:
    bound: bind | None = g.pop("roomrec_log", None)
    if bound is not None:
        try:
            bound.unbind()
        except ValueError:  # made in another context (a copied request context): nothing to undo
            pass
