"""One archive at a time per recording: a Redis lock with an expiry, released only by the
task that holds it. Staged bytes are resumed in place, so two tasks must never write the same
recording at once (a redelivered task, a duplicate event)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from workers.archive.errors import ArchiveBusy
from workers.state.keys import ARCHIVE_LOCK_KEY

log = logging.getLogger(__name__)

# Delete the key only if it still holds our token: an expired lock taken over by another
# task must not be released by the first.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RecordingLock:
    def __init__(self, client: redis.Redis, *, ttl: int) -> None:
        self.redis = client
        self.ttl = ttl
        self._release = client.register_script(_RELEASE)

    @contextmanager
    def hold(self, recording_sid: str) -> Iterator[None]:
        key = ARCHIVE_LOCK_KEY.format(recording_sid)
        token = uuid.uuid4().hex
        if not self.redis.set(key, token, nx=True, ex=self.ttl):
            remaining = self.redis.ttl(key)
            wait = float(remaining) if isinstance(remaining, int) and remaining > 0 else None
            raise ArchiveBusy(
                f"recording {recording_sid} is being archived by another task", retry_after=wait
            )
        try:
            yield
        finally:
            try:
                self._release(keys=[key], args=[token])
            except redis.RedisError as exc:  # it expires anyway
                log.warning("archive lock of %s not released: %s", recording_sid, exc)
