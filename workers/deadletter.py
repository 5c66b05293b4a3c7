"""The dead-letter store: events a handler gave up on, kept in Redis with what is needed to
replay them (the handler, its target, the event) and why (attempts, last error)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.fields import iso8601

log = logging.getLogger(__name__)

ENTRIES_KEY = "roomrec:deadletters"  # hash: entry id -> JSON
ORDER_KEY = "roomrec:deadletters:order"  # sorted set: entry id by time of failure


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
            pipe.hset(ENTRIES_KEY, entry_id, json.dumps(entry))
            pipe.zadd(ORDER_KEY, {entry_id: now.timestamp()})
            pipe.execute()
        log.error(
            "dead-lettered %s at %s after %d attempt(s): %s", event_id, stage, attempts, error
        )
        return entry_id

    def list(self) -> list[dict[str, Any]]:
        ids: list[str] = self.redis.zrange(ORDER_KEY, 0, -1)  # type: ignore[assignment]
        if not ids:
            return []
        raw = self.redis.hmget(ENTRIES_KEY, ids)
        return [json.loads(item) for item in raw if item is not None]

    def __len__(self) -> int:
        return int(self.redis.hlen(ENTRIES_KEY))
