"""What the rest of the service asks of the queue: :class:`Broker`.

Two implementations, one chosen once per process by :func:`workers.delivery.choice.open_broker`:
:class:`workers.delivery.redis_broker.RedisBroker` when the Celery broker is the very Redis of
``REDIS_URL`` (the default), :class:`workers.delivery.kombu_broker.KombuBroker` for any other
(RabbitMQ, another Redis database). Callers never ask which one they hold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import redis
from celery import Celery

from schemas import EventMessage
from workers.delivery.dedup import dedup_keys
from workers.state.holds import Hold


class Broker(ABC):
    """Publishes this service's task messages: the web's events, each at most once per
    ``dedup_ttl`` seconds (:meth:`enqueue`), and the workers' next attempts (:meth:`schedule`),
    and accounts for them until their attempt ended (:meth:`attempt_ended`).

    ``celery`` builds or publishes the messages; ``client`` is the Redis of ``REDIS_URL``, which
    holds the de-duplication marks (and, for a :class:`RedisBroker`, is the broker; for a
    :class:`KombuBroker`, holds the outbox).
    """

    def __init__(self, celery: Celery, client: redis.Redis, *, dedup_ttl: int) -> None:
        self.celery = celery
        self.redis = client
        self.dedup_ttl = dedup_ttl

    @abstractmethod
    def enqueue(self, message: EventMessage) -> bool:
        """Queue ``message`` for ``roomrec.process_event``; False when the same event (same id,
        or same Twilio idempotency token) was queued before: a duplicate.

        Raises :class:`workers.errors.BrokerUnavailable` when Redis or the broker does not
        answer in time; the event is then not marked as seen, so a retry (or the spool's
        relay) can succeed.
        """

    @abstractmethod
    def schedule(
        self, task_name: str, args: list[Any], *, task_id: str, queue: str, retries: int,
        delay: float,
    ) -> None:  # fmt: skip
        """Publish attempt number ``retries`` of task ``task_id`` to ``queue`` (the task's
        own, :func:`workers.delivery.celery_app.queue_of`) after ``delay`` seconds, at once
        when ``delay`` is 0. Raises what the broker's client raises (redis, kombu, OSError)."""

    @abstractmethod
    def attempt_ended(self, task_id: str) -> None:
        """The attempt of ``task_id`` ended as intended (done, dead-lettered, or replaced by
        its next attempt's message): nothing of it needs publishing again."""

    def hold(self, task_id: str) -> Hold | None:
        """What the attempt of ``task_id`` holds in Redis until it ended, for a task that
        releases it with its own last write instead of :meth:`attempt_ended` (see
        :mod:`workers.state.holds`); None when it holds nothing (no ledger)."""
        return None

    @abstractmethod
    def move_due(self) -> int:
        """Publish the delayed messages now due; returns how many were. Every worker's pump
        (:mod:`workers.delivery.pump`) calls it twice a second."""

    @abstractmethod
    def sweep(self) -> int:
        """Publish what was lost on its way to the broker or in it (the ledger's lost messages,
        the outbox's leftovers); returns how many were. The pump calls it every 5 s."""

    @abstractmethod
    def ping(self) -> None:
        """Raise :class:`workers.errors.BrokerUnavailable` unless Redis and the broker answer."""

    def mark_seen(self, message: EventMessage) -> None:
        """Mark ``message`` as queued, as :meth:`enqueue` does, for one published otherwise (a
        replay): the same event arriving later is then a duplicate."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in dedup_keys(message):
                pipe.set(key, 1, ex=self.dedup_ttl)
            pipe.execute()

    def close(self) -> None:
        """Close the Redis clients. The Celery app's broker connections stay in kombu's
        process-wide pool, which other apps on the same broker share."""
        self.redis.close()
