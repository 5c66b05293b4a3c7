"""What a task's attempt holds in Redis until it ended (:class:`Hold`), so that the write that
ends it can release it in the same step.

On the Redis broker that is the task's entry in the in-flight ledger
(:meth:`workers.delivery.ledger.InFlight.hold`): its id in two hashes and a sorted set. The
broker releases it on its own after the task returned (``Broker.attempt_ended``, a round trip);
``roomrec.process_event`` instead releases it with its last write, when nothing can follow
that write (:mod:`workers.pipeline.tasks`): queued in that transaction (:meth:`Hold.queue`), or
run by that write's own script when only the script knows whether anything follows (the room
tracker's, :class:`workers.state.rooms.RoomTracker`).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis


@dataclass(frozen=True, slots=True)
class Hold:
    """``member`` in each hash of ``hashes`` and each sorted set of ``sorted_sets``."""

    member: str
    hashes: tuple[str, ...]
    sorted_sets: tuple[str, ...]

    @property
    def keys(self) -> list[str]:
        """The hashes, then the sorted sets (a script's ``KEYS``)."""
        return [*self.hashes, *self.sorted_sets]

    def queue(self, pipe: redis.client.Pipeline) -> None:
        """Queue the release on ``pipe``, which the caller executes."""
        for key in self.hashes:
            pipe.hdel(key, self.member)
        for key in self.sorted_sets:
            pipe.zrem(key, self.member)
