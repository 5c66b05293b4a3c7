"""The dead-letter store: events a handler gave up on, kept in Redis with what is needed to
replay them (the handler, its target, the event) and why (attempts, last error).

An entry is removed only on purpose: by a purge, or by a replay once its task is published
(:mod:`workers.recovery.replay`), and then only if it did not fail again in between.
"""

from __future__ import annotations

import builtins
import json
import logging
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.fields import iso8601
from workers.state.keys import DEAD_LETTERS_KEY, DEAD_LETTERS_ORDER_KEY

log = logging.getLogger(__name__)


class DeadLetterStore:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def add(
        self,
        *,
        event_id: str,
        stage: str,
        target: str | None,
        attempts: int,
        error: str,
        message: dict[str, Any],
    ) -> str:
        """Keep one failed (event, stage) pair; adding the same pair again replaces it."""
        entry_id = f"{event_id}:{stage}" + (f":{target}" if target else "")
        now = datetime.now(UTC)
        entry = {
            "id": entry_id,
            "event_id": event_id,
            "stage": stage,
            "target": target,
            "attempts": attempts,
            "error": error,
            "failed_at": iso8601(now),
            "message": message,
        }
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(DEAD_LETTERS_KEY, entry_id, json.dumps(entry))
            pipe.zadd(DEAD_LETTERS_ORDER_KEY, {entry_id: now.timestamp()})
            pipe.execute()
        log.error(
            "dead-lettered %s at %s after %d attempt(s): %s", event_id, stage, attempts, error
        )
        return entry_id

    def list(self) -> list[dict[str, Any]]:
        ids: list[str] = self.redis.zrange(DEAD_LETTERS_ORDER_KEY, 0, -1)  # type: ignore[assignment]
        if not ids:
            return []
        raw = self.redis.hmget(DEAD_LETTERS_KEY, ids)
        return [json.loads(item) for item in raw if item is not None]

    def __len__(self) -> int:
        return int(self.redis.hlen(DEAD_LETTERS_KEY))

    def get(self, entry_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(DEAD_LETTERS_KEY, entry_id)
        return None if raw is None else dict(json.loads(raw))

    def ids(self) -> builtins.list[str]:
        """Every entry id, in order of failure."""
        ids: builtins.list[Any] = self.redis.zrange(DEAD_LETTERS_ORDER_KEY, 0, -1)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    def find(self, text: str) -> builtins.list[str]:
        """The ids of the entries ``text`` names: its own id, or else every id it starts."""
        if self.redis.hexists(DEAD_LETTERS_KEY, text):
            return [text]
        return [entry_id for entry_id in self.ids() if entry_id.startswith(text)]

    def remove(self, entry_id: str, *, failed_at: str | None = None) -> bool:
        """Delete one entry; with ``failed_at``, only if it is still that failure (a replayed
        event that failed again meanwhile is a new failure, and stays). True if deleted."""
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(DEAD_LETTERS_KEY)
                    raw = pipe.hget(DEAD_LETTERS_KEY, entry_id)
                    if raw is None or (
                        failed_at is not None and json.loads(raw).get("failed_at") != failed_at
                    ):
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hdel(DEAD_LETTERS_KEY, entry_id)
                    pipe.zrem(DEAD_LETTERS_ORDER_KEY, entry_id)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue  # another entry changed meanwhile: look again

    def purge(self) -> int:
        """Delete every entry; returns how many there were."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hlen(DEAD_LETTERS_KEY)
            pipe.delete(DEAD_LETTERS_KEY, DEAD_LETTERS_ORDER_KEY)
            count, _ = pipe.execute()
        return int(count)
