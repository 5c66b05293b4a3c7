"""One archive at a time per recording: redis-py's :class:`redis.lock.Lock` with an expiry,
released only by the task that holds it (its token). Staged bytes are resumed in place, so two
tasks must never write the same recording at once (a redelivered task, a duplicate event)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from workers.archive.errors import ArchiveBusy
from workers.state.keys import ARCHIVE_LOCK_KEY

log = logging.getLogger(__name__)


class RecordingLock:
    def __init__(self, client: redis.Redis, *, ttl: int) -> None:
        self.redis = client
        self.ttl = ttl

    @contextmanager
    def hold(self, recording_sid: str) -> Iterator[None]:
        key = ARCHIVE_LOCK_KEY.format(recording_sid)
        lock = self.redis.lock(key, timeout=self.ttl, blocking=False)
        if not lock.acquire():
            remaining = self.redis.ttl(key)
            wait = float(remaining) if isinstance(remaining, int) and remaining > 0 else None
            raise ArchiveBusy(
                f"recording {recording_sid} is being archived by another task", retry_after=wait
            )
        try:
            yield
        finally:
            try:
                lock.release()  # only while it still holds our token: an expired lock taken
            except redis.exceptions.LockError:  # over by another task stays theirs
                log.warning("archive lock of %s expired before it was released", recording_sid)
            except redis.RedisError as exc:  # it expires anyway
                log.warning("archive lock of %s not released: %s", recording_sid, exc)
