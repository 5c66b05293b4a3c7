"""What the web needs to be seen running without its secrets: logging (configured once, with
identifiers bound per request and client input truncated), URLs shown without their tokens,
the directory of the multiprocess metrics, the queue's depth at each scrape, and the check of
each Redis's ``maxmemory-policy`` that ``/readyz`` reports."""

from __future__ import annotations

from workers.delivery.queue_depth import QueueDepthCollector
from workers.observability.logs import bind, configure_logging, settings_secrets, truncate
from workers.observability.metrics import MULTIPROC_ENV
from workers.observability.redaction import redact
from workers.state.redis_policy import PolicyCheck

__all__ = [
    "MULTIPROC_ENV",
    "PolicyCheck",
    "QueueDepthCollector",
    "bind",
    "configure_logging",
    "redact",
    "settings_secrets",
    "truncate",
]
