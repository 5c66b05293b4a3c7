"""Putting accepted callbacks on the queue: the one part of ``workers`` the web imports.

Each event gets a stable id (:func:`event_id`) and a de-duplication mark in Redis, so a callback
Twilio delivers twice is queued once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping

import redis
from celery import Celery
from kombu.exceptions import KombuError

from schemas import EventMessage
from workers.celery_app import PROCESS_EVENT_TASK, make_celery
from workers.errors import BrokerUnavailable

log = logging.getLogger(__name__)

SEEN_KEY = "roomrec:seen:{}"
DEFAULT_DEDUP_TTL = 7 * 24 * 3600


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


class Enqueuer:
    """Publishes :class:`EventMessage` s for the workers, each at most once per TTL."""

    def __init__(
        self, celery: Celery, redis_client: redis.Redis, *, dedup_ttl: int = DEFAULT_DEDUP_TTL
    ) -> None:
        self.celery = celery
        self.redis = redis_client
        self.dedup_ttl = dedup_ttl

    @classmethod
    def from_urls(cls, broker_url: str, redis_url: str, *, timeout: float) -> Enqueuer:
        """An enqueuer whose every broker and Redis call gives up after about ``timeout`` s."""
        client = redis.Redis.from_url(
            redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=None,
            health_check_interval=30,
        )
        return cls(make_celery(broker_url, publish_timeout=timeout), client)

    def enqueue(self, message: EventMessage) -> bool:
        """Queue ``message``; False when the same event was queued before (a duplicate).

        Raises :class:`BrokerUnavailable` when Redis or the broker does not answer in time;
        the event is then not marked as seen, so Twilio's or the user's retry can succeed.
        """
        key = SEEN_KEY.format(message.id)
        try:
            if not self.redis.set(key, 1, nx=True, ex=self.dedup_ttl):
                return False
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"redis unavailable: {type(exc).__name__}") from exc
        try:
            self.celery.send_task(
                PROCESS_EVENT_TASK, args=[message.to_json()], task_id=message.id, retry=False
            )
        except (KombuError, OSError, redis.RedisError) as exc:
            self._forget(key)
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc
        return True

    def _forget(self, key: str) -> None:
        try:
            self.redis.delete(key)
        except redis.RedisError:
            log.warning("could not clear de-duplication mark %s after a failed publish", key)

    def ping(self) -> None:
        """Raise :class:`BrokerUnavailable` unless Redis and the broker answer."""
        try:
            self.redis.ping()
            with self.celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=0, timeout=self.redis_timeout)
        except (KombuError, OSError, redis.RedisError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    @property
    def redis_timeout(self) -> float:
        kwargs = self.redis.connection_pool.connection_kwargs
        return float(kwargs.get("socket_timeout") or 1.0)

    def close(self) -> None:
        self.redis.close()
        self.celery.close()
