"""The Celery application: JSON only, late acks, explicit queues and stable task names.

On RabbitMQ (:func:`is_amqp_url`) the queues are quorum queues (replicated, so a cluster keeps
them through a node's loss) on one topic exchange (:func:`amqp_queues`), which turns on
Celery's native delayed delivery: a message published with a countdown waits in RabbitMQ's
``celery_delayed_*`` queues until due, never unacknowledged in a worker.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from kombu import Exchange, Queue

from schemas.settings import RedisSentinel, WorkerSettings
from workers.state.redis_client import is_sentinel_url, sentinel_kwargs

EVENTS_QUEUE = "roomrec.events"
HANDLERS_QUEUE = "roomrec.handlers"
QUEUES = (EVENTS_QUEUE, HANDLERS_QUEUE)
PROCESS_EVENT_TASK = "roomrec.process_event"
RUN_HANDLER_TASK = "roomrec.run_handler"
RECONCILE_TASK = "roomrec.reconcile"  # on the default (events) queue
ROOM_RECORDINGS_TASK = "roomrec.room_recordings"
COMPOSE_TASK = "roomrec.compose_room"
FETCH_STAGE = "fetch"  # the stage of a dead letter whose process_event gave up
# Where each task's messages go; every other task goes to the events queue (the default).
TASK_QUEUES = {PROCESS_EVENT_TASK: EVENTS_QUEUE, RUN_HANDLER_TASK: HANDLERS_QUEUE}
DEFAULT_VISIBILITY_TIMEOUT = 90

# How often kombu looks for messages whose worker vanished (with throttle 1, every sweep
# scans): a lost worker's tasks are back in the queue within visibility timeout + this.
RESTORE_INTERVAL = 10


def queue_of(task_name: str) -> str:
    """The queue ``task_name``'s messages are published to."""
    return TASK_QUEUES.get(task_name, EVENTS_QUEUE)


def task_time_limit(visibility_timeout: int) -> int:
    """Longest a task may run: well under the visibility timeout, so a running task's message
    is never handed to a second worker while the first still works on it."""
    return max(10, min(300, visibility_timeout - 30))


REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+socket", "sentinel"})


def is_redis_url(broker_url: str) -> bool:
    """Whether the broker (the first of a ``;``-separated failover list) is Redis."""
    scheme = broker_url.split(";", 1)[0].partition("://")[0]
    return scheme.strip().lower() in REDIS_SCHEMES


AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})
# The topic exchange of the RabbitMQ queues: native delayed delivery routes a due message back
# through its queue's exchange, and cannot through a direct one (nor the default exchange).
AMQP_EXCHANGE = "roomrec"


def is_amqp_url(broker_url: str) -> bool:
    """Whether the broker (the first of a ``;``-separated failover list) is RabbitMQ."""
    scheme = broker_url.split(";", 1)[0].partition("://")[0]
    return scheme.strip().lower() in AMQP_SCHEMES


def amqp_queues() -> tuple[Queue, ...]:
    """The queues on RabbitMQ: quorum queues, each bound to :data:`AMQP_EXCHANGE` under its own
    name. RabbitMQ refuses to declare a queue again with other arguments, so a deployment
    whose queues of these names are classic ones migrates first (README, "RabbitMQ")."""
    exchange = Exchange(AMQP_EXCHANGE, type="topic", durable=True)
    return tuple(
        Queue(name, exchange, routing_key=name, queue_arguments={"x-queue-type": "quorum"})
        for name in QUEUES
    )


def amqp_transport_options(publish_timeout: float | None) -> dict[str, Any]:
    """RabbitMQ (``amqp://``): publisher confirms, so a message the broker did not take raises
    instead of silently vanishing; for the web also bounded socket reads and writes, and no
    reconnect loop. (The Redis options, e.g. ``visibility_timeout``, mean nothing there.)"""
    options: dict[str, Any] = {"confirm_publish": True}
    if publish_timeout is not None:
        options.update(read_timeout=publish_timeout, write_timeout=publish_timeout, max_retries=0)
    return options


def make_celery(
    broker_url: str,
    *,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
    publish_timeout: float | None = None,
    sentinel: RedisSentinel | None = None,
) -> Celery:
    """Build the Celery app. ``publish_timeout`` is for processes that only publish (the web):
    every broker call then fails within about that many seconds instead of retrying, so a dead
    or hung Redis costs a request a bounded wait, never a hang (kombu waits forever by default).
    ``sentinel`` names the master of a ``sentinel://`` broker (kombu's sentinel transport).
    """
    app = Celery("roomrec", broker=broker_url, set_as_current=False)
    transport_options: dict[str, Any] = {
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": RESTORE_INTERVAL,
        "unacked_restore_throttle": 1,
        "health_check_interval": 25,
    }
    if publish_timeout is not None:
        transport_options.update(
            socket_timeout=publish_timeout,
            socket_connect_timeout=publish_timeout,
            max_retries=0,
        )
    if sentinel is not None and is_sentinel_url(broker_url):
        transport_options.update(
            master_name=sentinel.master_name,
            sentinel_kwargs=sentinel_kwargs(sentinel, transport_options),
        )
    amqp = is_amqp_url(broker_url)
    if not is_redis_url(broker_url):
        transport_options = amqp_transport_options(publish_timeout)
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
        task_queues=amqp_queues() if amqp else (Queue(EVENTS_QUEUE), Queue(HANDLERS_QUEUE)),
        task_default_queue=EVENTS_QUEUE,
        task_routes={task: {"queue": queue} for task, queue in TASK_QUEUES.items()},
        task_time_limit=task_time_limit(visibility_timeout),
        task_soft_time_limit=task_time_limit(visibility_timeout) - 5,
        worker_hijack_root_logger=False,
        enable_utc=True,
        timezone="UTC",
    )
    if amqp:  # any queue Celery creates by itself: a quorum queue too, on a topic exchange
        app.conf.update(
            task_default_exchange=AMQP_EXCHANGE,
            task_default_exchange_type="topic",
            task_default_routing_key=EVENTS_QUEUE,
            task_default_queue_type="quorum",
            task_create_missing_queue_type="quorum",
            task_create_missing_queue_exchange_type="topic",
            broker_native_delayed_delivery_queue_type="quorum",
            worker_detect_quorum_queues=True,
        )
    if publish_timeout is not None:
        app.conf.update(
            broker_connection_timeout=publish_timeout,
            broker_connection_max_retries=0,
            task_publish_retry=False,
        )
    return app


def settings_of(app: Celery) -> WorkerSettings:
    """The worker settings :func:`workers.create_worker_app` put on ``app``."""
    settings: WorkerSettings = app.conf["roomrec_settings"]
    return settings


@signals.worker_ready.connect(weak=False, dispatch_uid="roomrec.redis_policy")
def warn_on_evicting_redis(sender: Any = None, **_: Any) -> None:
    """Once a ``celery worker`` is ready (its broker answered): a WARNING for each Redis whose
    ``maxmemory-policy`` evicts (:mod:`workers.state.redis_policy`). Never stops the worker."""
    app = getattr(sender, "app", None)
    if app is None:
        return
    from workers.state.redis_policy import warn_at_startup

    urls = {"CELERY_BROKER_URL": str(app.conf.broker_url or "")}
    settings = app.conf.get("roomrec_settings")
    if settings is not None:
        urls = {"REDIS_URL": settings.redis_url} | urls
    warn_at_startup(urls, sentinel=settings.redis_sentinel if settings is not None else None)
