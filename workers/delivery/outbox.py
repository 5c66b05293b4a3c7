"""The outbox: an event marked seen and kept in one step on ``REDIS_URL``, then published to a
broker that is not that Redis (RabbitMQ), where no Lua script can do both at once (the
transactional-outbox pattern). :class:`workers.delivery.kombu_broker.KombuBroker` drives it:

1. :meth:`Outbox.admit`, one Lua script: unless one of the event's de-duplication marks
   exists, set them all and write the event's message into the outbox, a sorted set
   (:data:`~workers.state.keys.OUTBOX_KEY`) of message JSON by when it was written. From then
   on the event is kept, as durably as the marks.
2. The web publishes the message, with publisher confirms, and removes it from the outbox
   once the broker confirmed it (:meth:`Outbox.published`).
3. A publish that failed takes the marks and the entry back (:meth:`Outbox.withdraw`), so the
   web's spool keeps the event and a later attempt queues it.
4. Whatever a web left behind (it crashed between 1 and 2, or lost Redis just before its
   removal) every worker's pump claims once it is :data:`GRACE` seconds old
   (:meth:`Outbox.claim` moves each claimed entry :data:`GRACE` seconds ahead, so no other
   pump takes it meanwhile), publishes it and removes it once confirmed.

So an event is never marked seen without being in the outbox or queued. It may be published
twice: when a web's removal (2) never happened although the broker confirmed, the pump
publishes it again, with the same task id, and the handlers' done marks keep every effect
once. A withdrawal (3) that finds its entry claimed or already published by a pump leaves it to
the pump and reports the event queued, so it is not spooled as well.

The outbox only holds messages not yet confirmed: those in the middle of a web's publish, and
those a pump has still to publish. It has no expiry; it is bounded by that work.
"""

from __future__ import annotations

import time

import redis

from schemas import EventMessage
from workers.delivery.dedup import dedup_keys
from workers.state.keys import OUTBOX_KEY

# How old an entry must be before a pump publishes it: longer than a web's publish takes
# (with ENQUEUE_TIMEOUT's default 0.5 s, at most about 2 s, a reconnect included), so a pump
# seldom publishes what a web is about to. Either way each event is queued; at worst twice.
GRACE = 10.0

# Set the marks and keep the message, unless any mark exists.
_ADMIT = """
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return 1
"""

# Take the marks and the message back, unless a pump claimed (moved it past its admission) or
# published (removed) it meanwhile.
_WITHDRAW = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
return 1
"""

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, message in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], message)
end
return due
"""


class Outbox:
    """The outbox on ``client`` (the Redis of ``REDIS_URL``); marks live ``dedup_ttl`` s.
    Every call raises redis-py's errors."""

    def __init__(self, client: redis.Redis, *, dedup_ttl: int) -> None:
        self.redis = client
        self.dedup_ttl = dedup_ttl
        self._admit = client.register_script(_ADMIT)
        self._withdraw = client.register_script(_WITHDRAW)
        self._claim = client.register_script(_CLAIM)

    def admit(
        self, message: EventMessage, entry: str, *, written: float, client: redis.Redis
    ) -> bool:
        """Mark ``message`` seen and keep ``entry`` (its JSON) as of ``written`` (a
        ``time.time()``), on ``client`` (a connection of the caller's); False, and nothing
        written, when it was seen before."""
        keys = [OUTBOX_KEY, *dedup_keys(message)]
        return bool(self._admit(keys=keys, args=[self.dedup_ttl, entry, written], client=client))

    def published(self, *entries: str | bytes, client: redis.Redis | None = None) -> None:
        """The broker confirmed ``entries``: forget them."""
        (client or self.redis).zrem(OUTBOX_KEY, *entries)

    def withdraw(
        self, message: EventMessage, entry: str, *, written: float, client: redis.Redis
    ) -> bool:
        """After a failed publish: remove ``entry`` and ``message``'s marks, True; False when a
        pump has taken the entry over (it publishes it, or did), and nothing was removed."""
        keys = [OUTBOX_KEY, *dedup_keys(message)]
        return bool(self._withdraw(keys=keys, args=[entry, written], client=client))

    def claim(self, *, now: float | None = None, batch: int = 100) -> list[str | bytes]:
        """Up to ``batch`` entries at least :data:`GRACE` s old, each now out of other pumps'
        reach for :data:`GRACE` s: the caller publishes them, then calls :meth:`published`."""
        now = time.time() if now is None else now
        claimed: list[str | bytes] = self._claim(
            keys=[OUTBOX_KEY], args=[now - GRACE, now + GRACE, batch]
        )
        return claimed
