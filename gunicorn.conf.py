"""gunicorn settings for roomrec's web: Prometheus metrics across processes, JSON logs.

gunicorn reads ``./gunicorn.conf.py`` by itself when started from this directory (else pass
``-c path/to/gunicorn.conf.py``). It only adds to the command line's options:

- ``PROMETHEUS_MULTIPROC_DIR``: every gunicorn worker keeps its counts in files there and
  ``GET /metrics`` merges them. When unset, a private temporary directory is made and removed
  at exit; when set, its ``*.db`` files are deleted at start (they are the last run's). A worker
  that exits is marked dead, so its live gauges go.
- ``LOG_FORMAT`` (``auto``, ``json``, ``text``): gunicorn's own lines too are JSON off a terminal.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
from typing import Any

from gunicorn.glogging import Logger

from workers.logs import configure_logging, make_formatter, resolve_format

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_OWNED_ENV = "ROOMREC_OWNED_MULTIPROC_DIR"  # the directory this file made, removed at exit
_SECRET_VARIABLES = ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY", "API_TOKEN")
_SECRETS = [os.environ.get(name) for name in _SECRET_VARIABLES]
_LOG_FORMAT = os.environ.get("LOG_FORMAT") or "auto"
try:
    _JSON = resolve_format(_LOG_FORMAT) == "json"
except ValueError as exc:
    raise SystemExit(f"invalid configuration: {exc}") from None
try:
    # The master's own lines (and Python's warnings, in every process) in the same format;
    # each worker's app configures its logging again from its settings.
    configure_logging(
        (os.environ.get("LOG_LEVEL") or "INFO").upper(), _LOG_FORMAT, secrets=_SECRETS
    )
except ValueError as exc:
    raise SystemExit(f"invalid configuration: LOG_LEVEL: {exc}") from None
logging.captureWarnings(True)

# Before the app (hence prometheus_client) is imported in any worker: it reads the variable once.
if not os.environ.get(_MULTIPROC_ENV):
    os.environ[_MULTIPROC_ENV] = os.environ[_OWNED_ENV] = tempfile.mkdtemp(
        prefix="roomrec-web-metrics-"
    )
elif not os.path.isdir(os.environ[_MULTIPROC_ENV]):
    raise SystemExit(
        f"invalid configuration: {_MULTIPROC_ENV}: {os.environ[_MULTIPROC_ENV]!r} "
        "is not an existing directory."
    )

from workers.metrics import process_exited  # noqa: E402  (after the variable)


def on_starting(server: Any) -> None:
    """Once, in the master, before any worker: drop the counts of a previous run."""
    if not os.environ.get(_OWNED_ENV):
        for path in glob.glob(os.path.join(os.environ[_MULTIPROC_ENV], "*.db")):
            os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    process_exited(worker.pid)


def on_exit(server: Any) -> None:
    owned = os.environ.get(_OWNED_ENV)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)


class RoomrecLogger(Logger):
    """gunicorn's error and access lines in roomrec's JSON format (off a terminal); on a
    terminal gunicorn's own text format is kept."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if not _JSON:
            return
        formatter = make_formatter("json", _SECRETS)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)


logger_class = RoomrecLogger
