"""A worker bootstep that publishes what waits in Redis for a worker to publish it. On the
Redis broker: delayed retries once due (:meth:`~workers.delivery.broker.Broker.move_due`), and
task messages the broker lost (:meth:`~workers.delivery.broker.Broker.sweep` of the ledger,
:mod:`workers.delivery.ledger`). On any other broker: the events a web left in the outbox
(:meth:`~workers.delivery.broker.Broker.sweep`, :mod:`workers.delivery.outbox`).

Runs as a thread in each worker's main process. Every worker pumps; the move from the sorted
set to the queue is one Lua script, and so is each sweep of the in-flight ledger and each claim
on the outbox, so each message is published once however many workers run, and retries keep
flowing as long as any worker is up.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from celery import bootsteps

from workers.delivery.broker import Broker
from workers.delivery.celery_app import settings_of
from workers.delivery.choice import open_broker
from workers.errors import BrokerUnavailable
from workers.state.redis_client import redis_client

log = logging.getLogger(__name__)

PUMP_INTERVAL = 0.5
SWEEP_EVERY = 10  # pump rounds between two sweeps of the in-flight ledger or outbox (5 s)


class DelayedRetryPump(bootsteps.StartStopStep):
    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        settings = settings_of(parent.app)
        client = redis_client(
            settings.redis_url, sentinel=settings.redis_sentinel, socket_timeout=5,
            socket_connect_timeout=5, health_check_interval=30,
        )  # fmt: skip
        broker = open_broker(
            parent.app, client, broker_url=settings.broker_url, redis_url=settings.redis_url,
            dedup_ttl=settings.dedup_ttl, visibility_timeout=settings.visibility_timeout,
        )  # fmt: skip
        self.thread = threading.Thread(
            target=self.run, args=(broker,), name="roomrec-delayed-retries", daemon=True
        )
        self.thread.start()

    def run(self, broker: Broker) -> None:
        failing = False
        rounds = 0
        while not self.stopping.wait(PUMP_INTERVAL):
            rounds += 1
            try:
                moved = broker.move_due()
                if rounds % SWEEP_EVERY == 0:
                    broker.sweep()
            except (redis.RedisError, BrokerUnavailable) as exc:
                if not failing:
                    log.warning("delayed retries paused, Redis or the broker unavailable: %s", exc)
                failing = True
                continue
            except Exception:  # noqa: BLE001  (an unforeseen one must not stop the pump)
                log.exception("delayed retries: unexpected error; carrying on")
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
