"""The broker when it is anything but the Redis of ``REDIS_URL`` (RabbitMQ, another Redis
database): messages go through Celery's own publish path, the de-duplication mark is set in
``REDIS_URL`` first and removed again when the publish fails, delays are Celery's
``countdown``, and there is no in-flight ledger (RabbitMQ does not lose an unacknowledged
message).

On RabbitMQ (``amqp://``) the web holds long-lived connections that can die while idle (a
broker restart, a load balancer's idle timeout): the first publish on such a connection then
fails at once with "connection closed". That publish is retried once, on a fresh connection,
because Twilio never resends a callback answered with an error. A publish that timed out is
not retried (the broker hangs; a second wait would double the answer time), and its connection
is dropped without AMQP's close handshake, which a hung broker would stall for another timeout.
On Redis this is plain ``send_task``: redis-py replaces dead connections by itself.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import KombuError

from schemas import EventMessage
from workers.delivery.broker import Broker
from workers.delivery.celery_app import PROCESS_EVENT_TASK, is_redis_url
from workers.delivery.dedup import dedup_keys
from workers.errors import BrokerUnavailable

log = logging.getLogger(__name__)


class KombuBroker(Broker):
    """:class:`Broker` through kombu: two-step enqueue, Celery's countdown, no ledger."""

    needs_pump = False

    def enqueue(self, message: EventMessage) -> bool:
        """:meth:`Broker.enqueue`: the id's mark is set (unless it exists) before the publish
        and removed again when the publish fails; the token's mark after it."""
        keys = dedup_keys(message)
        try:
            if any(self.redis.exists(key) for key in keys[1:]):
                return False
            if not self.redis.set(keys[0], 1, nx=True, ex=self.dedup_ttl):
                return False
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"redis unavailable: {type(exc).__name__}") from exc
        try:
            publish(self.celery, PROCESS_EVENT_TASK, [message.to_json()], task_id=message.id)
        except (KombuError, OSError, redis.RedisError) as exc:
            self._forget(keys[0])
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc
        for key in keys[1:]:
            self._mark(key)
        return True

    def _mark(self, key: str) -> None:
        try:
            self.redis.set(key, 1, ex=self.dedup_ttl)
        except redis.RedisError:
            log.warning("could not set de-duplication mark %s", key)

    def _forget(self, key: str) -> None:
        try:
            self.redis.delete(key)
        except redis.RedisError:
            log.warning("could not clear de-duplication mark %s after a failed publish", key)

    def schedule(
        self, task_name: str, args: list[Any], *, task_id: str, queue: str, retries: int,
        delay: float,
    ) -> None:  # fmt: skip
        self.celery.send_task(
            task_name, args=args, task_id=task_id, queue=queue, countdown=delay or None,
            retries=retries, argsrepr=task_id,  # task views (Flower): no target URL, no payload
        )  # fmt: skip

    def attempt_ended(self, task_id: str) -> None:
        """Nothing to do: no ledger here, the broker keeps an unacknowledged message."""

    def move_due(self) -> int:
        """Nothing to move: Celery's countdown holds delayed messages in the workers."""
        return 0

    def sweep(self) -> int:
        """Nothing to sweep: no ledger here."""
        return 0

    def ping(self) -> None:
        try:
            self.redis.ping()
            with self.celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=0, timeout=self._timeout())
        except (KombuError, OSError, redis.RedisError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def _timeout(self) -> float:
        kwargs = self.redis.connection_pool.connection_kwargs
        return float(kwargs.get("socket_timeout") or 1.0)


def publish(app: Celery, task_name: str, args: list[Any], *, task_id: str) -> None:
    """``send_task`` without kombu's retry loop; raises KombuError or OSError on failure. Task
    events (flower) show the task id, not the callback's parameters, as arguments."""
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
            except (KombuError, OSError) as exc:
                producer.connection.collect()
                if attempt == 2 or _timed_out(exc):
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


def _timed_out(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
