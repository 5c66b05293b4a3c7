"""Putting accepted callbacks on the queue: the one part of ``workers`` the web imports.

Each event gets a stable id (:func:`event_id`) and a de-duplication mark in Redis, so a callback
Twilio delivers twice is queued once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from urllib.parse import urlsplit

import redis
from celery import Celery
from kombu.exceptions import KombuError

from schemas import EventMessage
from workers.delivery.celery_app import EVENTS_QUEUE, PROCESS_EVENT_TASK, make_celery
from workers.delivery.kombu_publish import publish
from workers.delivery.redis_broker import AtomicEnqueue, MessageTemplate
from workers.errors import BrokerUnavailable
from workers.state.keys import SEEN_KEY

log = logging.getLogger(__name__)

DEFAULT_DEDUP_TTL = 7 * 24 * 3600


def same_redis(broker_url: str, redis_url: str) -> bool:
    """Whether the Celery broker is the very Redis database of ``REDIS_URL``."""

    def normal(url: str) -> tuple[str, str, int, int]:
        parts = urlsplit(url)
        database = int(parts.path.strip("/") or 0) if parts.path.strip("/").isdigit() else 0
        return parts.scheme, parts.hostname or "localhost", parts.port or 6379, database

    broker = normal(broker_url)
    return broker[0] in ("redis", "rediss") and broker == normal(redis_url)


def event_id(params: Mapping[str, str]) -> str:
    """A stable id for one event. A recording event is identified by its recording and event
    name (Twilio may resend it with another Timestamp); any other event by all its parameters.
    """
    if params.get("RecordingSid") and params.get("StatusCallbackEvent", "").startswith(
        "recording-"
    ):
        basis = json.dumps([params["RecordingSid"], params["StatusCallbackEvent"]])
    else:
        basis = json.dumps(sorted(params.items()))
    return "evt_" + hashlib.sha256(basis.encode()).hexdigest()[:32]


class ConnectionPerThread:
    """A Redis client of its own per thread, each holding one connection of ``pool`` for good,
    made on the thread's first call (so a web starts while Redis is down).

    A client taking a connection from a pool for every command pays, on each, for the pool's
    bookkeeping and its check that the connection holds no stray data (three system calls),
    about a third of an enqueue's client-side CPU. A thread's own connection needs neither, and
    a thread-local client is safe for the web's request threads and its spool relay alike.

    Under gevent (gunicorn's gevent worker) a "thread" is a greenlet, one per HTTP connection:
    a client each would keep a Redis connection per HTTP connection ever served. There every
    call shares one pooled client instead, whose connections go back to ``pool`` after each
    command.
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self._local = threading.local()
        self._clients: list[redis.Redis] = []
        self._lock = threading.Lock()
        self._pooled = redis.Redis(connection_pool=pool) if _greenlets() else None
        _LIVE.add(self)

    def client(self) -> redis.Redis:
        if self._pooled is not None:
            return self._pooled
        found: redis.Redis | None = getattr(self._local, "client", None)
        if found is None:
            # single_connection_client takes (and connects) its connection here: a RedisError
            # when Redis is down, raised to the caller like any other command's.
            found = redis.Redis(connection_pool=self.pool, single_connection_client=True)
            with self._lock:
                self._clients.append(found)
            self._local.client = found
        return found

    def _forget(self) -> None:
        # A forked child must not use, nor close (shutdown would cut the parent's), the
        # parent's connections: it drops them and makes its own.
        self._local = threading.local()
        self._clients = []
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._local = threading.local()


_LIVE: weakref.WeakSet[ConnectionPerThread] = weakref.WeakSet()


def _greenlets() -> bool:
    """Whether gevent has patched ``threading``, making each thread-local per greenlet."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


def _after_fork_in_child() -> None:
    for connections in list(_LIVE):
        connections._forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Enqueuer:
    """Publishes :class:`EventMessage` s for the workers, each at most once per TTL.

    When the broker is the Redis of ``REDIS_URL`` (the default), the de-duplication marks and
    the message are written by one Lua script
    (:class:`workers.delivery.redis_broker.AtomicEnqueue`): never
    one without the other. With another broker (RabbitMQ), the mark is set first and removed
    again when the publish fails.
    """

    def __init__(
        self,
        celery: Celery,
        redis_client: redis.Redis,
        *,
        dedup_ttl: int = DEFAULT_DEDUP_TTL,
        atomic: bool = False,
    ) -> None:
        self.celery = celery
        self.redis = redis_client
        self.dedup_ttl = dedup_ttl
        self.atomic = AtomicEnqueue(redis_client) if atomic else None
        self.template = MessageTemplate(celery, PROCESS_EVENT_TASK, queue=EVENTS_QUEUE)
        self.connections = ConnectionPerThread(redis_client.connection_pool)

    @classmethod
    def from_urls(
        cls, broker_url: str, redis_url: str, *, timeout: float, dedup_ttl: int = DEFAULT_DEDUP_TTL
    ) -> Enqueuer:
        """An enqueuer whose every broker and Redis call gives up after about ``timeout`` s."""
        client = redis.Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=None,
            health_check_interval=30,
        )
        return cls(
            make_celery(broker_url, publish_timeout=timeout),
            client,
            dedup_ttl=dedup_ttl,
            atomic=same_redis(broker_url, redis_url),
        )

    @staticmethod
    def dedup_keys(message: EventMessage) -> list[str]:
        keys = [SEEN_KEY.format(message.id)]
        if message.idempotency_token:
            token = hashlib.sha256(message.idempotency_token.encode()).hexdigest()[:32]
            keys.append(SEEN_KEY.format(f"token:{token}"))
        return keys

    def enqueue(self, message: EventMessage) -> bool:
        """Queue ``message``; False when the same event (same id, or same Twilio idempotency
        token) was queued before: a duplicate.

        Raises :class:`BrokerUnavailable` when Redis or the broker does not answer in time;
        the event is then not marked as seen, so a retry (or the spool's relay) can succeed.
        """
        keys = self.dedup_keys(message)
        if self.atomic is not None:
            body = self.template.render([message.to_json()], task_id=message.id)
            try:
                return self.atomic(
                    EVENTS_QUEUE, body, keys, self.dedup_ttl, task_id=message.id,
                    client=self.connections.client(),
                )  # fmt: skip
            except redis.RedisError as exc:
                raise BrokerUnavailable(f"redis unavailable: {type(exc).__name__}") from exc
        return self._enqueue_in_two_steps(message, keys)

    def _enqueue_in_two_steps(self, message: EventMessage, keys: list[str]) -> bool:
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

    def ping(self) -> None:
        """Raise :class:`BrokerUnavailable` unless Redis and the broker answer."""
        try:
            self.redis.ping()
            if self.atomic is not None:
                return
            with self.celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=0, timeout=self.redis_timeout)
        except (KombuError, OSError, redis.RedisError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    @property
    def redis_timeout(self) -> float:
        kwargs = self.redis.connection_pool.connection_kwargs
        return float(kwargs.get("socket_timeout") or 1.0)

    def close(self) -> None:
        """Close this enqueuer's Redis clients. The Celery app's broker connections stay in
        kombu's process-wide pool, which other apps on the same broker share."""
        self.connections.close()
        self.redis.close()
