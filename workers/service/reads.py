"""What the read API reads: recordings from the store, each event's handler outcomes and each
recording's archive record (both in Redis, through :func:`open_redis`, which the commands use
too).

The store is :class:`workers.metadata.Store`; its queries (and their SQLAlchemy ORM) load on
the first read. A database that does not answer raises :class:`StoreUnavailable`, one not
migrated :class:`SchemaNotReady`; Redis's errors are redis-py's.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis

from schemas.settings import RedisSentinel
from workers.archive.index import ArchiveIndex
from workers.metadata import SchemaNotReady, Store, StoreUnavailable
from workers.state.keys import ARCHIVES_KEY
from workers.state.outcomes import outcomes_of
from workers.state.redis_client import redis_client

if TYPE_CHECKING:
    from workers.metadata.queries import Page

__all__ = [
    "SchemaNotReady",
    "Store",
    "StoreUnavailable",
    "archive_record",
    "event_outcomes",
    "open_redis",
    "open_store",
    "recordings_page",
]

log = logging.getLogger(__name__)


def open_store(database_url: str) -> Store:
    """The store at ``database_url``; nothing is connected until the first read."""
    return Store.open(database_url)


def open_redis(url: str, *, sentinel: RedisSentinel | None, timeout: float) -> redis.Redis:
    """A client of the Redis at ``url`` (``REDIS_URL``; ``sentinel`` for a ``sentinel://``
    one) answering ``str``, every call giving up after about ``timeout`` s, none retried.
    Connects nothing until the first call."""
    return redis_client(
        url, sentinel=sentinel, socket_timeout=timeout, socket_connect_timeout=timeout,
        retry=None, decode_responses=True,
    )  # fmt: skip


def recordings_page(
    store: Store, *, limit: int, after: tuple[datetime, str] | None = None,
    room_sid: str | None = None, status: str | None = None, type: str | None = None,
    created_after: datetime | None = None, created_before: datetime | None = None,
) -> Page:  # fmt: skip
    """Up to ``limit`` recordings matching the filters, newest first, after the page end
    ``after`` (``date_created``, ``sid``); ``created_after`` is inclusive, ``created_before``
    exclusive. The page's ``next`` is where the following page starts, None on the last."""
    from workers.metadata.queries import Position, RecordingFilters

    filters = RecordingFilters(
        room_sid=room_sid, status=status, type=type, created_after=created_after,
        created_before=created_before,
    )  # fmt: skip
    return store.recordings(filters, limit=limit, after=Position(*after) if after else None)


def event_outcomes(client: redis.Redis, event_id: str) -> list[dict[str, Any]]:
    """Every handler's latest outcome for ``event_id``, sorted by handler and target."""
    return outcomes_of(client, event_id)


def archive_record(client: redis.Redis, recording_sid: str) -> dict[str, Any] | None:
    """The archive handler's record of ``recording_sid``, as it was written; None when the
    recording is not archived, or its record is not a JSON object (logged)."""
    try:
        return ArchiveIndex(client).stored(recording_sid)
    except ValueError:
        log.warning(
            "ignoring the unreadable archive record of %s in %s", recording_sid, ARCHIVES_KEY
        )
        return None
