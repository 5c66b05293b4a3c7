"""The worker's logs and metrics, wired to Celery's signals by :func:`install`.

- Logging: Celery's ``setup_logging`` is answered with
:func:`workers.observability.logs.configure_logging`,
  so Celery's own lines come out in the same format (JSON off a terminal). In JSON mode the
  start-up banner, which Celery prints as plain text, becomes one log line.
- Each task runs with its fields bound for its log lines (``task_id``, ``attempt``, ``event``,
  ``room_sid``, ``recording_sid``, ``event_id``, ``handler``), read from its arguments, and is
  timed and counted by task and Celery state (:mod:`workers.observability.metrics`).
- Metrics: before the pool forks, the main process switches prometheus_client to multiprocess
  mode in a private directory (under ``PROMETHEUS_MULTIPROC_DIR`` when set, else the system's
  temporary directory), serves the merged counts and the queue depth on ``METRICS_PORT`` once
  ready, and removes the directory at shutdown.

Only a ``celery worker`` sends the start-up signals; an app merely created (by a test, by
``celery inspect``) changes nothing in its process.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from typing import Any

from celery import signals
from celery.utils.log import mlevel

from schemas.settings import WorkerSettings
from workers.delivery.celery_app import PROCESS_EVENT_TASK, RUN_HANDLER_TASK
from workers.delivery.queue_depth import QueueDepthCollector
from workers.observability import logs, metrics

log = logging.getLogger(__name__)

_FIELD_LIMIT = 100  # a field read from a message is cut to this many characters
_PARAMS = (("StatusCallbackEvent", "event"), ("RoomSid", "room_sid"),
           ("RecordingSid", "recording_sid"))  # fmt: skip


def task_fields(task: str, args: Any) -> dict[str, str]:
    """The log fields found in the arguments of a ``task`` (its message's event, room,
    recording and id; the handler of ``run_handler``)."""
    fields: dict[str, str] = {}
    args = list(args or ())
    message: Any = None
    if task == RUN_HANDLER_TASK and len(args) == 3:
        fields["handler"] = str(args[0])[:_FIELD_LIMIT]
        message = args[2]
    elif task == PROCESS_EVENT_TASK and args:
        message = args[0]
    if not isinstance(message, dict):
        return fields
    params = message.get("params")
    if isinstance(params, dict):
        for key, name in _PARAMS:
            if isinstance(params.get(key), str):
                fields[name] = params[key][:_FIELD_LIMIT]
    if isinstance(message.get("id"), str):
        fields["event_id"] = message["id"][:_FIELD_LIMIT]
    return fields


def stage_of(task: str, args: Any) -> str:
    """The stage a retry of ``task`` is at, named as dead letters name it."""
    args = list(args or ())
    if task == RUN_HANDLER_TASK and args:
        return f"handler:{args[0]}"
    return "fetch" if task == PROCESS_EVENT_TASK else task


class _Observer:
    """The receivers of one worker's signals, for its settings."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.running: dict[str, tuple[float, logs.bind]] = {}
        self.directory: str | None = None
        self.exporter: Any = None

    # -- logging
    def setup_logging(self, loglevel: int | str | None = None, **_: Any) -> None:
        logs.configure_logging(
            self.settings.log_level, self.settings.log_format,
            secrets=logs.settings_secrets(self.settings),
            root_level=mlevel(loglevel) if loglevel else logging.INFO,
        )  # fmt: skip

    def after_setup(self, sender: Any = None, instance: Any = None, **_: Any) -> None:
        if instance is not None and logs.resolve_format(self.settings.log_format) == "json":
            instance.quiet = True  # the banner is plain text on stdout
            log.info(
                "celery worker %s starting: concurrency %s, handlers %s",
                sender, getattr(instance, "concurrency", "?"), ",".join(self.settings.handlers),
            )  # fmt: skip

    # -- tasks
    def task_prerun(self, task_id: str = "", task: Any = None, args: Any = None, **_: Any) -> None:
        name = getattr(task, "name", "?")
        attempt = int(getattr(getattr(task, "request", None), "retries", 0) or 0) + 1
        bound = logs.bind(task_id=task_id, attempt=attempt, **task_fields(name, args))
        self.running[task_id] = (time.perf_counter(), bound)
        metrics.task_started()

    def task_postrun(
        self, task_id: str = "", task: Any = None, args: Any = None, state: str | None = None,
        **_: Any,
    ) -> None:  # fmt: skip
        started = self.running.pop(task_id, None)
        if started is None:
            return
        try:
            metrics.task_finished(
                getattr(task, "name", "?"), state, time.perf_counter() - started[0]
            )
        finally:
            started[1].unbind()

    def task_retry(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        name = getattr(sender, "name", "?")
        metrics.celery_retry(stage_of(name, getattr(request, "args", None)))

    # -- the main process of a `celery worker`, before its pool forks
    def celeryd_init(self, options: Any = None, **_: Any) -> None:
        # Celery warns (running as root ...) before it sets up logging: format those lines too.
        self.setup_logging((options or {}).get("loglevel"))
        logging.captureWarnings(True)
        if not self.settings.metrics_port:
            return
        self.directory = tempfile.mkdtemp(
            prefix="roomrec-worker-metrics-", dir=self.settings.metrics_dir
        )
        metrics.enable_multiprocess(self.directory)

    def worker_ready(self, **_: Any) -> None:
        if self.directory is None:
            return
        queue = QueueDepthCollector.for_broker(
            self.settings.broker_url, timeout=0.5, sentinel=self.settings.redis_sentinel
        )
        registry = metrics.exporter_registry(self.directory, *([queue] if queue else []))
        self.exporter = metrics.start_exporter(self.settings.metrics_port, registry)

    def worker_process_shutdown(self, pid: int | None = None, **_: Any) -> None:
        if pid is not None:
            metrics.process_exited(pid)

    def worker_shutdown(self, **_: Any) -> None:
        if self.exporter is not None:
            self.exporter.shutdown()
            self.exporter.server_close()
            self.exporter = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


_SIGNALS = (
    "setup_logging", "celeryd_after_setup", "task_prerun", "task_postrun", "task_retry",
    "celeryd_init", "worker_ready", "worker_process_shutdown", "worker_shutdown",
)  # fmt: skip
_RECEIVERS = {"celeryd_after_setup": "after_setup"}


def install(settings: WorkerSettings) -> None:
    """Connect the worker's logging and metrics to Celery's signals, for ``settings``.

    Installing again (another app in the same process) replaces the previous receivers.
    """
    metrics.set_known_handlers(settings.handlers)
    observer = _Observer(settings)
    for name in _SIGNALS:
        signal = getattr(signals, name)
        uid = f"roomrec.observability.{name}"
        signal.disconnect(dispatch_uid=uid)
        receiver = getattr(observer, _RECEIVERS.get(name, name))
        signal.connect(receiver, weak=False, dispatch_uid=uid)
