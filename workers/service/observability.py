"""What the web needs to be seen running without its secrets: logging (configured once, with
identifiers bound per request and client input truncated, and the formatters gunicorn's own
lines share), URLs shown without their tokens, the multiprocess metrics (switched on in
gunicorn's master, a worker's files dropped when it exits), the queue's depth at each scrape,
and the check of each Redis's ``maxmemory-policy`` that ``/readyz`` reports."""

from __future__ import annotations

from workers.delivery.queue_depth import QueueDepthCollector
from workers.observability.logs import (
    RedactingFormatter,
    Redactor,
    bind,
    configure_logging,
    make_formatter,
    resolve_format,
    settings_secrets,
    truncate,
)
from workers.observability.metrics import MULTIPROC_ENV, enable_multiprocess, process_exited
from workers.observability.redaction import redact
from workers.state.redis_policy import PolicyCheck

__all__ = [
    "MULTIPROC_ENV",
    "PolicyCheck",
    "QueueDepthCollector",
    "RedactingFormatter",
    "Redactor",
    "bind",
    "configure_logging",
    "enable_multiprocess",
    "make_formatter",
    "process_exited",
    "redact",
    "resolve_format",
    "settings_secrets",
    "truncate",
]
