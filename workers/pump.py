"""A worker bootstep that publishes delayed retries when they fall due.

Runs as a thread in each worker's main process. Every worker pumps; the move from the sorted
set to the queue is one Lua script, so each retry is published exactly once however many
workers run, and retries keep flowing as long as any worker is up.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery import bootsteps

from workers.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE
from workers.enqueue import same_redis
from workers.publish import DelayedQueue
from workers.runtime import settings_of

log = logging.getLogger(__name__)

PUMP_INTERVAL = 0.5


class DelayedRetryPump(bootsteps.StartStopStep):
    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        settings = settings_of(parent.app)
        if not same_redis(settings.broker_url, settings.redis_url):
            return  # another broker: retries use Celery's countdown instead
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        )
        delayed = DelayedQueue(client, (EVENTS_QUEUE, HANDLERS_QUEUE))
        self.thread = threading.Thread(
            target=self.run, args=(delayed,), name="roomrec-delayed-retries", daemon=True
        )
        self.thread.start()

    def run(self, delayed: DelayedQueue) -> None:
        failing = False
        while not self.stopping.wait(PUMP_INTERVAL):
            try:
                moved = delayed.move_due()
            except redis.RedisError as exc:
                if not failing:
                    log.warning("delayed retries paused, Redis unavailable: %s", exc)
                failing = True
                continue
            if failing:
                log.info("delayed retries resumed")
                failing = False
            if moved:
                log.debug("published %d delayed retries", moved)

    def stop(self, parent: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
