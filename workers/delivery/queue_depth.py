"""Queue depth, read from the Redis broker (a single Redis, or the master of a Sentinel group)
when Prometheus scrapes.

A custom collector rather than a gauge someone must keep up to date: at each scrape it asks the
broker (with a short timeout) how many messages wait in each queue and how many are delivered
but not yet acknowledged (running tasks, and retries waiting out their countdown).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from schemas.settings import RedisSentinel
from workers.delivery.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE
from workers.state.keys import UNACKED_KEY
from workers.state.redis_client import is_sentinel_url, redis_client

log = logging.getLogger(__name__)

# kombu's Redis transport (its sentinel transport's channel too) keeps a queue in a list named
# after it, plus one list per priority step ("<queue>\x06\x16<step>"); delivered,
# unacknowledged messages in the hash UNACKED_KEY.
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")


class QueueDepthCollector(Collector):
    """``roomrec_queue_depth{queue}``, ``roomrec_queue_unacked`` and ``roomrec_queue_up``
    (0 when the broker did not answer within ``timeout`` seconds)."""

    def __init__(
        self,
        broker_url: str,
        *,
        timeout: float = 0.5,
        queues: Sequence[str] = (EVENTS_QUEUE, HANDLERS_QUEUE),
        sentinel: RedisSentinel | None = None,
    ) -> None:
        self.queues = tuple(queues)
        self.client = redis_client(
            broker_url, sentinel=sentinel, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=None,
        )  # fmt: skip

    @classmethod
    def for_broker(
        cls, broker_url: str, *, timeout: float = 0.5, sentinel: RedisSentinel | None = None
    ) -> QueueDepthCollector | None:
        """A collector for a Redis broker (``sentinel`` names a ``sentinel://`` one's master);
        ``None`` for any other broker."""
        if not broker_url.startswith(REDIS_SCHEMES):
            return None
        if is_sentinel_url(broker_url) and sentinel is None:
            return None
        return cls(broker_url, timeout=timeout, sentinel=sentinel)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "roomrec_queue_up", "1 when the broker answered the queue depth query, else 0."
        )
        try:
            depths, unacked = self._read()
        except redis.RedisError as exc:
            log.warning("queue depth not read: broker unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "roomrec_queue_depth", "Messages waiting in each queue.", labels=["queue"]
        )
        for queue, count in zip(self.queues, depths, strict=True):
            depth.add_metric([queue], count)
        yield depth
        yield GaugeMetricFamily(
            "roomrec_queue_unacked",
            "Messages delivered to a worker and not yet acknowledged (running, or waiting for "
            "a retry's countdown).",
            value=unacked,
        )

    def _read(self) -> tuple[list[int], int]:
        with self.client.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                pipe.llen(queue)
                for step in _PRIORITY_STEPS:
                    pipe.llen(f"{queue}{_PRIORITY_SEP}{step}")
            pipe.hlen(UNACKED_KEY)
            results = [int(value) for value in pipe.execute()]
        per_queue = 1 + len(_PRIORITY_STEPS)
        depths = [sum(results[i : i + per_queue]) for i in range(0, len(results) - 1, per_queue)]
        return depths, results[-1]

    def close(self) -> None:
        self.client.close()
