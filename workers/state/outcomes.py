"""What each handler did with each event, kept in Redis for operators and the read API.

One hash per event (``roomrec:outcomes:{event_id}``): field ``handler`` or ``handler#target``
(the target's fingerprint), value a JSON object ``{"handler", "target", "status", "attempts",
"error", "at"}`` where status is ``succeeded``, ``retrying``, ``gone`` (a forward target
answered 410) or ``dead-lettered``. Written by :class:`OutcomeStore`, which keeps each hash
its ``ttl`` (a worker's ``WorkerSettings.marks_ttl``, as the done marks); read by
:func:`outcomes_of`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis

from schemas.fields import iso8601
from workers.observability.redaction import fingerprint, target_label
from workers.state.keys import OUTCOMES_KEY

STATUSES = frozenset({"succeeded", "retrying", "gone", "dead-lettered"})


class OutcomeStore:
    def __init__(self, client: redis.Redis, *, ttl: int) -> None:
        self.redis = client
        self.ttl = ttl

    def record(
        self,
        event_id: str,
        handler: str,
        target: str | None,
        status: str,
        *,
        attempts: int,
        error: str | None = None,
        pipe: redis.client.Pipeline | None = None,
    ) -> None:
        """Keep the outcome; with ``pipe``, as part of the caller's pipeline (not executed)."""
        if status not in STATUSES:
            raise ValueError(f"unknown outcome {status!r}")
        field = handler if target is None else f"{handler}#{fingerprint(target)}"
        value = {
            "handler": handler,
            "target": target_label(target),
            "status": status,
            "attempts": attempts,
            "error": error,
            "at": iso8601(datetime.now(UTC)),
        }
        key = OUTCOMES_KEY.format(event_id)
        if pipe is not None:
            pipe.hset(key, field, json.dumps(value))
            pipe.expire(key, self.ttl)
            return
        with self.redis.pipeline(transaction=True) as own:
            own.hset(key, field, json.dumps(value))
            own.expire(key, self.ttl)
            own.execute()


def outcomes_of(client: redis.Redis, event_id: str) -> list[dict[str, Any]]:
    """Every handler's latest outcome for ``event_id``, sorted by handler and target."""
    raw: dict[Any, Any] = client.hgetall(OUTCOMES_KEY.format(event_id))
    outcomes = [json.loads(value) for value in raw.values()]
    return sorted(outcomes, key=lambda o: (o["handler"], o["target"] or ""))
