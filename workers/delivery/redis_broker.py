"""The broker when it is the very Redis database of ``REDIS_URL`` (the default): every task
message is pushed by a Lua script (:mod:`workers.delivery.messages` builds it) in the same step
as what goes with it:

- the de-duplication marks of an accepted callback (:meth:`RedisBroker.enqueue`): an event is
  never marked seen without being queued, nor queued twice;
- a delayed retry (:meth:`RedisBroker.schedule`): kept in a sorted set until due, then moved to
  its queue by any worker's pump (:meth:`RedisBroker.move_due`), instead of being parked
  unacknowledged in a worker as Celery's ``countdown`` does (which counts against the
  visibility timeout and duplicates on expiry);
- and always its entry in the in-flight ledger (:mod:`workers.delivery.ledger`), so a message
  the broker loses in transit is found and published again (:meth:`RedisBroker.sweep`).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import Celery

from schemas import EventMessage
from workers.delivery.broker import Broker
from workers.delivery.celery_app import (
    DEFAULT_VISIBILITY_TIMEOUT,
    EVENTS_QUEUE,
    PROCESS_EVENT_TASK,
    QUEUES,
)
from workers.delivery.connections import ConnectionPerThread
from workers.delivery.dedup import dedup_keys
from workers.delivery.ledger import InFlight, grace_for
from workers.delivery.messages import MessageTemplate, build_message
from workers.errors import BrokerUnavailable
from workers.state.deadletters import DeadLetterStore
from workers.state.holds import Hold
from workers.state.keys import DELAYED_KEY, INFLIGHT_DUE_KEY, INFLIGHT_KEY

# LPUSH a message unless any of its de-duplication keys exists; set them all with it, and
# record it in the in-flight ledger.
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


class RedisBroker(Broker):
    """:class:`Broker` on the Redis of ``REDIS_URL``: one Lua script per publish, delayed
    retries in Redis, the in-flight ledger. ``visibility_timeout`` (the worker's) sets how long
    a ledger entry may be overdue before it counts as lost (:func:`ledger.grace_for`)."""

    def __init__(
        self, celery: Celery, client: redis.Redis, *, dedup_ttl: int,
        visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
    ) -> None:  # fmt: skip
        super().__init__(celery, client, dedup_ttl=dedup_ttl)
        self.connections = ConnectionPerThread(client.connection_pool)  # the web's enqueues
        self.template = MessageTemplate(celery, PROCESS_EVENT_TASK, queue=EVENTS_QUEUE)
        self.ledger = InFlight(client, QUEUES, grace=grace_for(visibility_timeout))
        self.dead_letters = DeadLetterStore(client)  # where the sweep puts what it gave up on
        self._enqueue_once = client.register_script(_ENQUEUE_ONCE)
        self._publish = client.register_script(_PUBLISH)
        self._move_due = client.register_script(_MOVE_DUE)

    def enqueue(self, message: EventMessage) -> bool:
        """:meth:`Broker.enqueue`: one script on this thread's own connection."""
        body = self.template.render([message.to_json()], task_id=message.id)
        keys = [EVENTS_QUEUE, INFLIGHT_KEY, INFLIGHT_DUE_KEY, *dedup_keys(message)]
        args: list[str | int | float] = [self.dedup_ttl, body, message.id, time.time()]
        try:
            return bool(self._enqueue_once(keys=keys, args=args, client=self.connections.client()))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"redis unavailable: {type(exc).__name__}") from exc

    def schedule(
        self, task_name: str, args: list[Any], *, task_id: str, queue: str, retries: int,
        delay: float,
    ) -> None:  # fmt: skip
        message = build_message(
            self.celery, task_name, args, task_id=task_id, queue=queue, retries=retries
        )
        self.push(queue, message, task_id=task_id, delay=delay)

    def push(self, queue: str, message: str, *, task_id: str, delay: float = 0.0) -> None:
        """Publish the built ``message`` (task ``task_id``) to ``queue`` after ``delay``
        seconds, at once when ``delay`` is 0; either way recorded in the in-flight ledger."""
        now = time.time()
        keys = [DELAYED_KEY.format(queue), queue, INFLIGHT_KEY, INFLIGHT_DUE_KEY]
        self._publish(keys=keys, args=[message, task_id, now + max(delay, 0.0), now])

    def attempt_ended(self, task_id: str) -> None:
        self.ledger.done(task_id)

    def hold(self, task_id: str) -> Hold:
        """:meth:`Broker.hold`: the task's entry in the in-flight ledger."""
        return self.ledger.hold(task_id)

    def move_due(self, *, now: float | None = None, batch: int = 500) -> int:
        """Move due delayed messages to their queues, exactly once even with many workers
        pumping (the move is one script)."""
        keys: list[str] = []
        for queue in QUEUES:
            keys += [DELAYED_KEY.format(queue), queue]
        moved = self._move_due(keys=keys, args=[now if now is not None else time.time(), batch])
        return int(moved)

    def sweep(self, *, now: float | None = None) -> int:
        return self.ledger.sweep(self.dead_letters, now=now)

    def ping(self) -> None:
        try:
            self.redis.ping()
        except (OSError, redis.RedisError) as exc:
            raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.connections.close()
        super().close()
