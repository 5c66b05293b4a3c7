"""What the web reads of the queue and of Redis to report on itself: the queue's depth at each
Prometheus scrape (``GET /metrics``) and each Redis's ``maxmemory-policy`` (``/readyz``)."""

from __future__ import annotations

from workers.delivery.queue_depth import QueueDepthCollector
from workers.state.redis_policy import PolicyCheck

__all__ = ["PolicyCheck", "QueueDepthCollector"]
