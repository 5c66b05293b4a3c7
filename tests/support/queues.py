"""Reading the task messages waiting on a Celery queue in Redis, for tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis


def task_messages(redis_url: str, queue: str) -> list[dict[str, Any]]:
    """The messages on ``queue``, oldest first: task name, task id and args (kombu LPUSHes a
    JSON envelope whose body is base64 of ``[args, kwargs, embed]``)."""
    client = redis.Redis.from_url(redis_url)
    try:
        raws: list[bytes] = client.lrange(queue, 0, -1)  # type: ignore[assignment]
    finally:
        client.close()
    found = []
    for raw in reversed(raws):
        envelope = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        headers = envelope["headers"]
        found.append({"task": headers["task"], "id": headers["id"], "args": args})
    return found
