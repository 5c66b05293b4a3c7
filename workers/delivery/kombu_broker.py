"""The broker when it is anything but the Redis of ``REDIS_URL`` (RabbitMQ, another Redis
database): messages go through Celery's own publish path, with publisher confirms on RabbitMQ.

- An accepted event goes through the outbox (:mod:`workers.delivery.outbox`): its
  de-duplication marks and its message written in one Lua script on ``REDIS_URL``, then
  published, then removed from the outbox once the broker confirmed it; what a web left there
  (it crashed in between) every worker's pump publishes (:meth:`KombuBroker.sweep`). An event
  is never marked seen without being queued, nor queued twice but for that crash.
- A delay is Celery's ``countdown``. On RabbitMQ, whose queues are quorum queues
  (:func:`workers.delivery.celery_app.amqp_queues`), Celery publishes such a message through its
  native delayed delivery: it waits in RabbitMQ until due, never held by a worker.
- There is no in-flight ledger: RabbitMQ hands an unacknowledged message to another consumer
  when its consumer's connection drops, and its quorum queues keep it on a majority of nodes.

On RabbitMQ (``amqp://``) the web holds long-lived connections that can die while idle (a
broker restart, a load balancer's idle timeout): the first publish on such a connection then
fails at once with "connection closed". That publish is retried once, on a fresh connection,
because Twilio never resends a callback answered with an error. A publish that timed out is
not retried (the broker hangs; a second wait would double the answer time), and its connection
is dropped without AMQP's close handshake, which a hung broker would stall for another timeout.
On Redis this is plain ``send_task``: redis-py replaces dead connections by itself.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from amqp.exceptions import MessageNacked
from celery import Celery
from kombu.exceptions import KombuError

from schemas import EventMessage
from workers.delivery.broker import Broker
from workers.delivery.celery_app import PROCESS_EVENT_TASK, is_redis_url
from workers.delivery.connections import ConnectionPerThread
from workers.delivery.outbox import Outbox
from workers.errors import BrokerUnavailable

log = logging.getLogger(__name__)

# What a failed publish raises: the broker refused the message (a nack: publisher confirms), or
# the connection failed or timed out.
PUBLISH_ERRORS = (KombuError, OSError, redis.RedisError, MessageNacked)


class KombuBroker(Broker):
    """:class:`Broker` through kombu: the outbox, Celery's countdown, no ledger."""

    def __init__(self, celery: Celery, client: redis.Redis, *, dedup_ttl: int) -> None:
        super().__init__(celery, client, dedup_ttl=dedup_ttl)
        self.connections = ConnectionPerThread(client.connection_pool)  # the web's enqueues
        self.outbox = Outbox(client, dedup_ttl=dedup_ttl)

    def enqueue(self, message: EventMessage) -> bool:
        """:meth:`Broker.enqueue`: marks and outbox entry in one script, the publish, then the
        entry's removal (a web that dies in between leaves it to the pump)."""
        payload = message.to_json()
        entry = json.dumps(payload, separators=(",", ":"))
        written = time.time()
        client = self._client()
        try:
            if not self.outbox.admit(message, entry, written=written, client=client):
                return False
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"redis unavailable: {type(exc).__name__}") from exc
        try:
            publish(self.celery, PROCESS_EVENT_TASK, [payload], task_id=message.id)
        except PUBLISH_ERRORS as exc:
            self._withdraw(message, entry, written, client, exc)
            return True  # a pump took the entry over: it publishes it
        try:
            self.outbox.published(entry, client=client)
        except redis.RedisError:
            log.warning("event %s queued; its outbox entry stays, a pump publishes it again "
                        "(harmless: same task id)", message.id)  # fmt: skip
        return True

    def _client(self) -> redis.Redis:
        try:
            return self.connections.client()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"redis unavailable: {type(exc).__name__}") from exc

    def _withdraw(
        self, message: EventMessage, entry: str, written: float, client: redis.Redis,
        failure: BaseException,
    ) -> None:  # fmt: skip
        """After a failed publish: raise BrokerUnavailable (the caller spools the event) once its
        marks and entry are gone, or if that is unknown; return when a pump has the entry."""
        reason = _failed(failure)
        try:
            withdrawn = self.outbox.withdraw(message, entry, written=written, client=client)
        except redis.RedisError as exc:  # maybe withdrawn, maybe not: spooled, queued once
            raise BrokerUnavailable(f"{reason}; redis: {type(exc).__name__}") from failure
        if withdrawn:
            raise BrokerUnavailable(reason) from failure
        log.info("publish of %s failed (%s), but a pump has it", message.id, reason)

    def schedule(
        self, task_name: str, args: list[Any], *, task_id: str, queue: str, retries: int,
        delay: float,
    ) -> None:  # fmt: skip
        """Celery's countdown, in whole seconds (native delayed delivery counts in seconds)."""
        self.celery.send_task(
            task_name, args=args, task_id=task_id, queue=queue,
            countdown=math.ceil(delay) if delay > 0 else None, retries=retries,
            argsrepr=task_id,  # task views (Flower): no target URL, no payload
        )  # fmt: skip

    def attempt_ended(self, task_id: str) -> None:
        """Nothing to do: no ledger here, the broker keeps an unacknowledged message."""

    def move_due(self) -> int:
        """Nothing to move: the broker delays messages itself (Celery's countdown)."""
        return 0

    def sweep(self, *, now: float | None = None) -> int:
        """Publish the outbox's events a web left unpublished (claimed first, so each pump
        publishes its own); raises :class:`BrokerUnavailable` on the first publish that fails,
        leaving the rest claimed, for a pump to try again :data:`outbox.GRACE` s later."""
        relayed = 0
        for entry in self.outbox.claim(now=now):
            payload = json.loads(entry)
            try:
                publish(self.celery, PROCESS_EVENT_TASK, [payload], task_id=payload["id"])
            except PUBLISH_ERRORS as exc:
                raise BrokerUnavailable(_failed(exc)) from exc
            self.outbox.published(entry)
            relayed += 1
        if relayed:
            log.warning("published %d accepted event(s) a web had left in the outbox", relayed)
        return relayed

    def ping(self) -> None:
        try:
            self.redis.ping()
            with self.celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=0, timeout=self._timeout())
        except (KombuError, OSError, redis.RedisError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.connections.close()
        super().close()

    def _timeout(self) -> float:
        kwargs = self.redis.connection_pool.connection_kwargs
        return float(kwargs.get("socket_timeout") or 1.0)


def publish(app: Celery, task_name: str, args: list[Any], *, task_id: str) -> None:
    """``send_task`` without kombu's retry loop; raises one of :data:`PUBLISH_ERRORS` on failure
    (a message the broker refused, publisher confirms' nack, comes wrapped in a KombuError).
    Task events (flower) show the task id, not the callback's parameters, as arguments."""
    if is_redis_url(app.conf.broker_url):
        app.send_task(task_name, args=args, task_id=task_id, retry=False, argsrepr=task_id)
        return
    for attempt in (1, 2):
        with app.producer_or_acquire() as producer:
            try:
                with _green_deadline(app.conf.broker_connection_timeout):
                    app.send_task(task_name, args=args, task_id=task_id, producer=producer,
                                  retry=False, argsrepr=task_id)  # fmt: skip
                return
            except (KombuError, OSError, MessageNacked) as exc:
                if _caused_by(exc, MessageNacked):  # refused (a queue over its limit, say):
                    raise  # the connection is sound, and another one would be refused too
                producer.connection.collect()
                if attempt == 2 or _caused_by(exc, TimeoutError):
                    raise
                log.warning("publish of %s: connection lost (%s), reconnecting", task_id, exc)


@contextmanager
def _green_deadline(seconds: float | None) -> Iterator[None]:
    """Under gevent (the web's gunicorn worker), a deadline of ``seconds`` on the publish.

    py-amqp bounds its socket reads and writes with ``SO_RCVTIMEO``/``SO_SNDTIMEO`` on a
    socket left without a Python timeout (celery/py-amqp#98); a gevent socket waits in the hub
    and never meets them (gevent/gevent#644), so a hung broker would hold the request forever.
    """
    monkey = sys.modules.get("gevent.monkey")
    if not seconds or monkey is None or not monkey.is_module_patched("socket"):
        yield
        return
    import gevent

    with gevent.Timeout(seconds, TimeoutError(f"broker did not answer within {seconds:g} s")):
        yield


def _failed(exc: BaseException) -> str:
    """Why a publish failed, for BrokerUnavailable (and so the log)."""
    if _caused_by(exc, MessageNacked):
        return "broker refused the message (publisher confirms: nack)"
    return f"broker unavailable: {type(exc).__name__}"


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether ``exc`` or one it was raised from is a ``kind`` (kombu wraps py-amqp's errors, a
    nack included, in its own)."""
    while exc is not None:
        if isinstance(exc, kind):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
