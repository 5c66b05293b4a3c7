"""The Celery application: JSON only, late acks, explicit queues and stable task names."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Queue

EVENTS_QUEUE = "roomrec.events"
HANDLERS_QUEUE = "roomrec.handlers"
PROCESS_EVENT_TASK = "roomrec.process_event"
RUN_HANDLER_TASK = "roomrec.run_handler"

# Longest a single task may run. Every task is far shorter; the limit only stops a hung one
# well before the broker's visibility timeout hands its message to another worker.
TASK_TIME_LIMIT = 300


def make_celery(
    broker_url: str,
    *,
    visibility_timeout: int = 3600,
    publish_timeout: float | None = None,
) -> Celery:
    """Build the Celery app. ``publish_timeout`` is for processes that only publish (the web):
    every broker call then fails within about that many seconds instead of retrying, so a dead
    or hung Redis costs a request a bounded wait, never a hang (kombu waits forever by default).
    """
    app = Celery("roomrec", broker=broker_url, set_as_current=False)
    transport_options: dict[str, Any] = {
        "visibility_timeout": visibility_timeout,
        "health_check_interval": 25,
    }
    if publish_timeout is not None:
        transport_options.update(
            socket_timeout=publish_timeout,
            socket_connect_timeout=publish_timeout,
            max_retries=0,
        )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        task_queues=(Queue(EVENTS_QUEUE), Queue(HANDLERS_QUEUE)),
        task_default_queue=EVENTS_QUEUE,
        task_routes={
            PROCESS_EVENT_TASK: {"queue": EVENTS_QUEUE},
            RUN_HANDLER_TASK: {"queue": HANDLERS_QUEUE},
        },
        task_time_limit=TASK_TIME_LIMIT,
        task_soft_time_limit=TASK_TIME_LIMIT - 30,
        worker_hijack_root_logger=False,
        enable_utc=True,
        timezone="UTC",
    )
    if publish_timeout is not None:
        app.conf.update(
            broker_connection_timeout=publish_timeout,
            broker_connection_max_retries=0,
            task_publish_retry=False,
        )
    return app
