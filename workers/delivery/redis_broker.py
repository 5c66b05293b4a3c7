"""Publishing Celery task messages straight into Redis, atomically with what goes with them.

Celery's own publish path (``send_task``) costs about 0.5–0.7 ms of CPU per message on Redis,
most of it in kombu's per-publish connection handling, and it cannot be combined with other
Redis writes. Here the message is built by Celery itself (``app.amqp.create_task_message``),
serialised as kombu's Redis transport does, and pushed by a Lua script in the same step as:

- the de-duplication marks of an accepted callback (:class:`AtomicEnqueue`): an event is never
  marked seen without being queued, nor queued twice;
- a delayed retry (:class:`DelayedQueue`): kept in a sorted set until due, then moved to its
  queue by any worker's pump, instead of being parked unacknowledged in a worker as Celery's
  ``countdown`` does (which counts against the visibility timeout and duplicates on expiry).

Each of these also records the message in the in-flight ledger (:mod:`workers.delivery.ledger`) in
the same script, so a message the broker loses in transit is found and published again.

Workers consume these messages like any other: they are ordinary Celery protocol 2 messages.
Only valid when the broker is the same Redis database as ``REDIS_URL``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import redis
from celery import Celery
from kombu.utils.json import dumps as kombu_dumps

from workers.state.keys import DELAYED_KEY, INFLIGHT_DUE_KEY, INFLIGHT_KEY


def build_message(
    app: Celery, task_name: str, args: list[Any], *, task_id: str, queue: str, retries: int = 0
) -> str:
    """The JSON string kombu's Redis transport would LPUSH for ``app.send_task(...)``."""
    headers, properties, body, _ = app.amqp.create_task_message(
        task_id, task_name, args, {}, retries=retries, argsrepr=task_id, kwargsrepr="{}"
    )
    envelope = {
        "body": base64.b64encode(kombu_dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            **properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(envelope, separators=(",", ":"))


class MessageTemplate:
    """:func:`build_message` for one task and queue, built by Celery once and then only filled.

    The messages the web publishes differ only in their task id, arguments and delivery tag, but
    Celery's builder assembles every header again each time (about 60 µs a callback). Here it
    runs once, with placeholders, and the serialised envelope is cut around them; a message is
    those pieces joined with its own JSON-encoded values. Like :func:`build_message`, it links no
    message to a parent task (each is its own root), wherever it is called from.
    """

    _PLACEHOLDER = re.compile(r'"(roomrec-template-(?:id|body|tag))"')

    def __init__(self, app: Celery, task_name: str, *, queue: str) -> None:
        self.app = app
        self.task_name = task_name
        self.queue = queue
        self._pieces: list[str] = []  # built on first use: the ``origin`` header names the pid

    def _build(self) -> None:
        text = build_message(
            self.app, self.task_name, [], task_id="roomrec-template-id", queue=self.queue
        )
        envelope = json.loads(text)
        _, _, embed = json.loads(base64.b64decode(envelope["body"]))
        self._embed = kombu_dumps(embed)
        envelope["body"] = "roomrec-template-body"
        envelope["properties"]["delivery_tag"] = "roomrec-template-tag"
        # literal, placeholder name, literal, placeholder name, ..., literal
        self._pieces = self._PLACEHOLDER.split(json.dumps(envelope, separators=(",", ":")))

    def render(self, args: list[Any], *, task_id: str) -> str:
        """What ``build_message(app, task_name, args, task_id=task_id, queue=queue)`` gives,
        but for the delivery tag (a new one each time there too)."""
        if not self._pieces:
            self._build()
        body = f"[{kombu_dumps(args)}, {{}}, {self._embed}]"  # kombu's dumps of the tuple
        values = {
            "roomrec-template-id": json.dumps(task_id),
            "roomrec-template-body": '"' + base64.b64encode(body.encode()).decode() + '"',
            "roomrec-template-tag": '"' + str(uuid.uuid4()) + '"',
        }
        pieces = self._pieces
        return "".join(values[piece] if index % 2 else piece for index, piece in enumerate(pieces))


_ENQUEUE_ONCE = """
for i = 4, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 4, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
redis.call('LPUSH', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])  -- the in-flight ledger
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
return 1
"""


class AtomicEnqueue:
    """LPUSH a message unless any of its de-duplication keys exists; set them all with it, and
    record it in the in-flight ledger."""

    def __init__(self, client: redis.Redis) -> None:
        self.script = client.register_script(_ENQUEUE_ONCE)

    def __call__(
        self,
        queue: str,
        message: str,
        dedup_keys: list[str],
        ttl: int,
        *,
        task_id: str,
        client: redis.Redis | None = None,
    ) -> bool:
        """``client``: another client of the same Redis to run the script on."""
        keys = [queue, INFLIGHT_KEY, INFLIGHT_DUE_KEY, *dedup_keys]
        args: list[str | int | float] = [ttl, message, task_id, time.time()]
        return bool(self.script(keys=keys, args=args, client=client))


_PUBLISH = """
if tonumber(ARGV[3]) > tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])  -- the in-flight ledger
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
return 1
"""


_MOVE_DUE = """
local moved = 0
for i = 1, #KEYS, 2 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
  for _, message in ipairs(due) do
    redis.call('ZREM', KEYS[i], message)
    redis.call('LPUSH', KEYS[i + 1], message)
    moved = moved + 1
  end
end
return moved
"""


class DelayedQueue:
    """Messages waiting in Redis until due; :meth:`move_due` publishes them, exactly once even
    with many workers pumping (the move is one Lua script)."""

    def __init__(self, client: redis.Redis, queues: tuple[str, ...]) -> None:
        self.redis = client
        self.queues = queues
        self.mover = client.register_script(_MOVE_DUE)
        self.publisher = client.register_script(_PUBLISH)

    def add(self, queue: str, message: str, delay: float, *, task_id: str) -> None:
        """Publish ``message`` (task ``task_id``) to ``queue`` after ``delay`` seconds, at once
        when ``delay`` is 0; either way recorded in the in-flight ledger."""
        now = time.time()
        keys = [DELAYED_KEY.format(queue), queue, INFLIGHT_KEY, INFLIGHT_DUE_KEY]
        self.publisher(keys=keys, args=[message, task_id, now + max(delay, 0.0), now])

    def move_due(self, *, now: float | None = None, batch: int = 500) -> int:
        keys: list[str] = []
        for queue in self.queues:
            keys += [DELAYED_KEY.format(queue), queue]
        moved = self.mover(keys=keys, args=[now if now is not None else time.time(), batch])
        return int(moved)

    def pending(self) -> int:
        return sum(int(self.redis.zcard(DELAYED_KEY.format(q))) for q in self.queues)
