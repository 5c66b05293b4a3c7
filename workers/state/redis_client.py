"""The one way roomrec opens a Redis client (:func:`redis_client`), whatever the URL: ``redis://``,
``rediss://`` and ``unix://`` as redis-py reads them, and ``sentinel://`` in the format of
kombu's sentinel transport, so that ``REDIS_URL`` and ``CELERY_BROKER_URL`` are written alike::

    sentinel://[[username]:password@]host[:port][/db];sentinel://host[:port];...

Each ``;``-separated URL names one sentinel (port 26379 by default). As for kombu, the first
one's credentials and database are the master's. The name the sentinels monitor the master
under (``REDIS_SENTINEL_MASTER``) and the sentinels' own password (``REDIS_SENTINEL_PASSWORD``,
kombu's ``sentinel_kwargs``) come from :class:`schemas.settings.RedisSentinel`.

A Sentinel client is redis-py's :meth:`redis.sentinel.Sentinel.master_for`: its pool asks the
sentinels for the master's address whenever it opens a connection, and drops a connection that
fails (the master died) or whose writes are refused (the master was demoted). So the same
client follows a failover by itself: the commands in flight when the master dies fail (as when
a single Redis goes away), the next ones reach the promoted replica.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from schemas.settings import RedisSentinel

SENTINEL_SCHEME = "sentinel"
SENTINEL_PORT = 26379  # kombu's sentinel transport's default port, and Sentinel's
SENTINEL_TIMEOUT = 5.0  # seconds per call to a sentinel when the caller sets no socket timeout


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    """What a ``sentinel://`` URL says: the sentinels' addresses, and the master's database and
    credentials (those of the first URL, as kombu reads them)."""

    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` (the first of a ``;``-separated list) is a ``sentinel://`` URL."""
    return url.split(";", 1)[0].strip().lower().startswith(SENTINEL_SCHEME + "://")


def parse_sentinel_url(url: str) -> SentinelUrl:
    """The sentinels, database and credentials of ``url``; :class:`ValueError` when any of its
    ``;``-separated parts is not ``sentinel://host[:port][/db]`` or the database is no number."""
    sentinels: list[tuple[str, int]] = []
    first = None
    for part in (piece.strip() for piece in url.split(";")):
        if not part:
            continue
        parts = urlsplit(part)
        if parts.scheme.lower() != SENTINEL_SCHEME or not parts.hostname:
            raise ValueError("every ;-separated URL must be sentinel://host[:port][/db]")
        sentinels.append((parts.hostname, parts.port or SENTINEL_PORT))  # port: ValueError
        first = first or parts
    if first is None:
        raise ValueError("no sentinel in the URL")
    path = first.path.strip("/")
    if path and not path.isdigit():
        raise ValueError("the database must be a number: sentinel://host:port/0")
    return SentinelUrl(
        sentinels=tuple(sentinels),
        db=int(path or 0),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
    )


def sentinel_kwargs(sentinel: RedisSentinel, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of the connections to the sentinels themselves (redis-py's and kombu's
    ``sentinel_kwargs``): the socket timeouts of ``options`` (a master connection's), else
    :data:`SENTINEL_TIMEOUT`; no retries (redis-py's default retries a client three times with
    a backoff of seconds, where a sentinel that does not answer should be passed over for the
    next one at once); and the sentinels' own password."""
    found: dict[str, Any] = {
        "socket_timeout": options.get("socket_timeout") or SENTINEL_TIMEOUT,
        "socket_connect_timeout": options.get("socket_connect_timeout") or SENTINEL_TIMEOUT,
        "retry": None,
    }
    if sentinel.password:
        found["password"] = sentinel.password
    return found


class SentinelMaster(redis.Redis):
    """A client on the master a group of sentinels names (:meth:`Sentinel.master_for`): closing
    it also closes its connections to the sentinels."""

    def close(self) -> None:
        super().close()
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        if isinstance(manager, Sentinel):
            manager.close()


def redis_client(url: str, *, sentinel: RedisSentinel | None = None, **options: Any) -> redis.Redis:
    """A client for ``url``. ``options`` are redis-py's connection options (``socket_timeout``,
    ``retry``, ``decode_responses``...), applied to the master's connections for a
    ``sentinel://`` URL, which also needs ``sentinel`` (:class:`ValueError` without it).
    Connects nothing: the first command does."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    if sentinel is None:
        raise ValueError("a sentinel:// URL needs the master's name (REDIS_SENTINEL_MASTER)")
    target = parse_sentinel_url(url)
    manager = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs(sentinel, options))
    credentials = {"username": target.username, "password": target.password}
    master: redis.Redis = manager.master_for(
        sentinel.master_name,
        redis_class=SentinelMaster,
        db=target.db,
        **{name: value for name, value in credentials.items() if value},
        **options,
    )
    return master
