"""What the web needs to be seen running without its secrets: logging (configured once, with
identifiers bound per request and client input truncated, and the formatters gunicorn's own
lines share), URLs shown without their tokens, and the multiprocess metrics (switched on in
gunicorn's master, a worker's files dropped when it exits).

Nothing here imports redis: ``gunicorn.conf.py`` imports this before gevent patches the
standard library, and redis-py imports ``ssl`` (see :mod:`workers.service.health` for what
reads Redis)."""

from __future__ import annotations

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

__all__ = [
    "MULTIPROC_ENV",
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
