"""The one decision of which broker (:class:`~workers.delivery.broker.Broker`) a process uses
(:func:`open_broker`), and the broker of a process that only publishes, the web's, opened from
its URLs (:func:`connect`)."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from celery import Celery

from schemas.settings import RedisSentinel
from workers.delivery.broker import Broker
from workers.delivery.celery_app import DEFAULT_VISIBILITY_TIMEOUT, make_celery
from workers.delivery.kombu_broker import KombuBroker
from workers.delivery.redis_broker import RedisBroker
from workers.state.redis_client import is_sentinel_url, parse_sentinel_url, redis_client


def open_broker(
    celery: Celery, client: redis.Redis, *, broker_url: str, redis_url: str, dedup_ttl: int,
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
) -> Broker:  # fmt: skip
    """The broker of a process whose Celery app ``celery`` is on ``broker_url`` and whose
    ``client`` is the Redis of ``redis_url``: a :class:`RedisBroker` when they are the same
    Redis database, else a :class:`KombuBroker`. Connects nothing."""
    if _same_redis(broker_url, redis_url):
        return RedisBroker(
            celery, client, dedup_ttl=dedup_ttl, visibility_timeout=visibility_timeout
        )
    return KombuBroker(celery, client, dedup_ttl=dedup_ttl)


def connect(
    broker_url: str, redis_url: str, *, timeout: float, dedup_ttl: int,
    sentinel: RedisSentinel | None = None,
) -> Broker:  # fmt: skip
    """:func:`open_broker` for a process that only publishes (the web): its own Celery app and
    Redis client, whose every call gives up after about ``timeout`` s. Connects on first use,
    so a web starts while Redis is down. ``sentinel``: for ``sentinel://`` URLs."""
    client = redis_client(
        redis_url,
        sentinel=sentinel,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=None,
        health_check_interval=30,
    )
    celery = make_celery(broker_url, publish_timeout=timeout, sentinel=sentinel)
    return open_broker(celery, client, broker_url=broker_url, redis_url=redis_url,
                       dedup_ttl=dedup_ttl)  # fmt: skip


def _same_redis(broker_url: str, redis_url: str) -> bool:
    """Whether the Celery broker is the very Redis database of ``REDIS_URL``: for a plain
    Redis the first of a ``;``-separated failover list (as for
    :func:`~workers.delivery.celery_app.is_redis_url`); for Sentinel the same sentinels (in any
    order) and database, hence the same master (``REDIS_SENTINEL_MASTER`` serves both)."""
    if is_sentinel_url(broker_url) or is_sentinel_url(redis_url):
        if not (is_sentinel_url(broker_url) and is_sentinel_url(redis_url)):
            return False
        broker, marks = parse_sentinel_url(broker_url), parse_sentinel_url(redis_url)
        return set(broker.sentinels) == set(marks.sentinels) and broker.db == marks.db

    def normal(url: str) -> tuple[str, str, int, int]:
        parts = urlsplit(url.split(";", 1)[0].strip())
        database = int(parts.path.strip("/") or 0) if parts.path.strip("/").isdigit() else 0
        return parts.scheme, parts.hostname or "localhost", parts.port or 6379, database

    broker_server = normal(broker_url)
    return broker_server[0] in ("redis", "rediss") and broker_server == normal(redis_url)
