"""The in-flight ledger: every task message this service publishes on Redis, until its attempt
has ended, so that a message the broker loses is published again.

kombu's Redis transport moves a message from its queue to the ``unacked`` hash in two steps
(``BRPOP``, then ``HSET`` from the worker), and a worker that acknowledges a task which ended in
an unexpected exception (Redis gone in the middle of it, say) removes it for good. Either way
the message is then nowhere: not queued, not unacknowledged, not delayed, and no visibility
timeout brings it back (celery/celery#7950: a message popped and not yet in ``unacked`` when the
worker stops is gone; celery/kombu#1836: unacknowledged messages lost with their worker). The
ledger closes those holes:

- Whoever publishes a task message through the
  :class:`workers.delivery.redis_broker.RedisBroker` (the web's atomic enqueue, a scheduled
  retry, a handler deferred to a task of its own, a replay) records it here in the same Lua
  script: task id -> message, and the task id in a sorted set by when it is due.
- A task removes its entry (:meth:`InFlight.done`, through the broker's ``attempt_ended``)
  when its attempt ended as intended: done, dead-lettered, or replaced by the next attempt's
  message (which overwrote the entry). ``roomrec.process_event`` removes it itself, with its
  last write, when nothing can follow that write (:meth:`InFlight.hold`, through the broker's
  ``hold``): a round trip less per event.
- Every worker's pump calls :meth:`InFlight.sweep`. An entry overdue by ``grace`` seconds is
  looked for where a message can be: the ``unacked`` hash (reserved or running), the delayed
  set, its queue. Found, it is looked at again ``grace`` seconds later (later still the further
  back in the queue it waits). Found nowhere, it is pushed to the front of its queue again.

Publishing again is safe: each handler's done mark keeps an effect from happening twice. A task
published again ``max_republish`` times without ever completing is dead-lettered, so a message
that kills every worker that takes it does not circulate for ever.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import redis

from workers.delivery.celery_app import FETCH_STAGE, PROCESS_EVENT_TASK, RUN_HANDLER_TASK
from workers.observability.redaction import target_label
from workers.state.deadletters import DeadLetterStore
from workers.state.holds import Hold
from workers.state.keys import (
    DELAYED_KEY,
    INFLIGHT_DUE_KEY,
    INFLIGHT_KEY,
    REPUBLISHED_KEY,
    UNACKED_KEY,
)

log = logging.getLogger(__name__)

MAX_REPUBLISH = 5
# Assumed slowest drain when deciding when to look again at a message still queued: one that
# waits behind N others is next looked at after about N / DRAIN_RATE seconds.
DRAIN_RATE = 20.0

_SWEEP = """
local cutoff, now, batch = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local max_republish, rate = tonumber(ARGV[4]), tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, batch)
local republished, gave_up = 0, {}
for _, task_id in ipairs(due) do
  local message = redis.call('HGET', KEYS[1], task_id)
  local ok, envelope = false, nil
  if message then ok, envelope = pcall(cjson.decode, message) end
  local queue, tag, slot = nil, nil, nil
  if ok and type(envelope) == 'table' and type(envelope.properties) == 'table' then
    tag = envelope.properties.delivery_tag
    if type(envelope.properties.delivery_info) == 'table' then
      queue = envelope.properties.delivery_info.routing_key
    end
  end
  for i = 5, #KEYS, 2 do
    if KEYS[i + 1] == queue then slot = i end
  end
  if not slot or type(tag) ~= 'string' then
    -- gone already, or not a message this ledger can put back: forget it
    redis.call('HDEL', KEYS[1], task_id)
    redis.call('HDEL', KEYS[3], task_id)
    redis.call('ZREM', KEYS[2], task_id)
  else
    local later = nil
    if redis.call('HEXISTS', KEYS[4], tag) == 1 or redis.call('ZSCORE', KEYS[slot], message) then
      later = now
    else
      local at = redis.call('LPOS', KEYS[slot + 1], message, 'RANK', -1)
      if at then
        local ahead = redis.call('LLEN', KEYS[slot + 1]) - 1 - at
        later = now + ahead / rate
      end
    end
    if later then
      redis.call('ZADD', KEYS[2], later, task_id)
    elseif redis.call('HINCRBY', KEYS[3], task_id, 1) > max_republish then
      redis.call('HDEL', KEYS[1], task_id)
      redis.call('HDEL', KEYS[3], task_id)
      redis.call('ZREM', KEYS[2], task_id)
      table.insert(gave_up, message)
    else
      redis.call('RPUSH', KEYS[slot + 1], message)
      redis.call('ZADD', KEYS[2], now, task_id)
      republished = republished + 1
    end
  end
end
return {republished, gave_up}
"""


def grace_for(visibility_timeout: float) -> float:
    """How long past due a task message may be unaccounted for before it counts as lost. It
    only has to cover the moments a message is in nobody's hands (between kombu's BRPOP and
    its ``unacked`` write), so a third of the visibility timeout is plenty."""
    return max(5.0, visibility_timeout / 3)


class InFlight:
    """The ledger's reading side: :meth:`done` for tasks, :meth:`sweep` for the pump."""

    def __init__(self, client: redis.Redis, queues: tuple[str, ...], *, grace: float) -> None:
        self.redis = client
        self.queues = queues
        self.grace = grace
        self.sweeper = client.register_script(_SWEEP)

    def done(self, task_id: str) -> None:
        """The attempt of ``task_id`` ended as intended: forget its message."""
        with self.redis.pipeline(transaction=True) as pipe:
            self.hold(task_id).queue(pipe)
            pipe.execute()

    def hold(self, task_id: str) -> Hold:
        """Where ``task_id``'s entry is: what :meth:`done` removes."""
        return Hold(
            task_id, hashes=(INFLIGHT_KEY, REPUBLISHED_KEY), sorted_sets=(INFLIGHT_DUE_KEY,)
        )

    def sweep(
        self, dead_letters: DeadLetterStore, *, now: float | None = None, batch: int = 100
    ) -> int:
        """Publish again what is overdue and found nowhere; returns how many were."""
        now = time.time() if now is None else now
        keys = [INFLIGHT_KEY, INFLIGHT_DUE_KEY, REPUBLISHED_KEY, UNACKED_KEY]
        for queue in self.queues:
            keys += [DELAYED_KEY.format(queue), queue]
        args = [now - self.grace, now, batch, MAX_REPUBLISH, DRAIN_RATE]
        republished, gave_up = self.sweeper(keys=keys, args=args)
        for message in gave_up:
            _dead_letter(dead_letters, message)
        if republished:
            log.warning(
                "published %d task message(s) again: lost in transit (found neither queued, "
                "reserved nor delayed %.0fs after they were due)", republished, self.grace,
            )  # fmt: skip
        return int(republished)

    def pending(self) -> int:
        return int(self.redis.hlen(INFLIGHT_KEY))


def _dead_letter(store: DeadLetterStore, raw: str | bytes) -> None:
    """Dead-letter a task message that never completed, in the shape replay expects."""
    envelope = json.loads(raw)
    task = envelope["headers"]["task"]
    args: list[Any] = json.loads(base64.b64decode(envelope["body"]))[0]
    error = f"published {MAX_REPUBLISH + 1} times and never completed (lost or killed each time)"
    if task == PROCESS_EVENT_TASK:
        message = args[0]
        store.add(
            event_id=str(message.get("id", "?")), stage=FETCH_STAGE, target=None,
            attempts=MAX_REPUBLISH + 1, error=error, message=message,
        )  # fmt: skip
    elif task == RUN_HANDLER_TASK:
        name, target, message = args
        store.add(
            event_id=str(message.get("id", "?")), stage=f"handler:{name}",
            target=target_label(target), attempts=MAX_REPUBLISH + 1, error=error,
            message=message,
        )  # fmt: skip
    else:
        log.error("gave up on task %s %s: %s", task, envelope["headers"].get("id"), error)
