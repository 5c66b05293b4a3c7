"""gunicorn settings for roomrec's web: Prometheus metrics across processes, JSON logs.

gunicorn reads ``./gunicorn.conf.py`` by itself when started from this directory (else pass
``-c path/to/gunicorn.conf.py``). It only adds to the command line's options:

- ``PROMETHEUS_MULTIPROC_DIR``: every gunicorn worker keeps its counts in files there and
  ``GET /metrics`` merges them. When unset, a private temporary directory is made and removed
  at exit; when set, its ``*.db`` files are deleted at start (they are the last run's). A worker
  that exits is marked dead, so its live gauges go.
- ``LOG_FORMAT`` (``auto``, ``json``, ``text``): gunicorn's own lines too are JSON off a terminal.

It also sets how the web holds under slow or hostile clients, for every entry point (the image,
compose, ``make run``, the demo, the tests and the benchmarks):

- An event-loop worker (:class:`BoundedGeventWorker`, gunicorn's gevent worker) holds up to
  ``WEB_WORKER_CONNECTIONS`` connections per process, so a slow connection costs a greenlet,
  not a worker. It closes a connection whose request line and headers take longer than
  ``WEB_HEADER_TIMEOUT`` (on a new or a kept-alive connection), and answers ``408`` and closes
  one whose body takes longer than ``WEB_BODY_TIMEOUT``.
- gunicorn trusts ``X-Forwarded-Proto`` (and the like) and a ``SCRIPT_NAME`` header only with
  ``TRUST_PROXY_HEADERS=1``, and then only from ``FORWARDED_ALLOW_IPS`` (gunicorn's own
  variable, loopback by default). Otherwise no peer, not even loopback, may set them.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import tempfile
from typing import Any

import gevent
from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http.body import Body
from gunicorn.workers.ggevent import GeventWorker

from schemas.settings import (
    ConfigurationError,
    ServerSettings,
    ServerSettingsSchema,
    WebSettingsSchema,
    load_settings,
)
from workers.service.observability import (
    MULTIPROC_ENV,
    RedactingFormatter,
    Redactor,
    configure_logging,
    enable_multiprocess,
    make_formatter,
    process_exited,
    resolve_format,
    settings_secrets,
)

_OWNED_ENV = "ROOMREC_OWNED_MULTIPROC_DIR"  # the directory this file made, removed at exit
_SECRET_VARIABLES = ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY", "API_TOKEN")


def _secrets() -> list[str | None]:
    """What the master's and gunicorn's own lines must never show: the same secrets as the
    app's (every token, key and password setting, those of ``TWILIO_ACCOUNTS`` too). With
    settings the app would refuse (it says why in each worker), the plain token variables."""
    try:
        return [*settings_secrets(load_settings(WebSettingsSchema(), os.environ))]
    except ConfigurationError:
        return [os.environ.get(name) for name in _SECRET_VARIABLES]


_SECRETS = _secrets()
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

# prometheus_client, imported above, chose how to count from the environment as it was then: a
# directory made here switches it to files there, before any worker forks (they inherit both).
if not os.environ.get(MULTIPROC_ENV):
    os.environ[_OWNED_ENV] = tempfile.mkdtemp(prefix="roomrec-web-metrics-")
    enable_multiprocess(os.environ[_OWNED_ENV])
elif not os.path.isdir(os.environ[MULTIPROC_ENV]):
    raise SystemExit(
        f"invalid configuration: {MULTIPROC_ENV}: {os.environ[MULTIPROC_ENV]!r} "
        "is not an existing directory."
    )


def on_starting(server: Any) -> None:
    """Once, in the master, before any worker: drop the counts of a previous run."""
    if not os.environ.get(_OWNED_ENV):
        for path in glob.glob(os.path.join(os.environ[MULTIPROC_ENV], "*.db")):
            os.remove(path)


def child_exit(server: Any, worker: Any) -> None:
    process_exited(worker.pid)


def on_exit(server: Any) -> None:
    owned = os.environ.get(_OWNED_ENV)
    if owned:
        shutil.rmtree(owned, ignore_errors=True)


class RoomrecLogger(Logger):
    """gunicorn's error and access lines in roomrec's JSON format (off a terminal); on a
    terminal gunicorn's own text format is kept. Either way they are redacted as roomrec's."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        json_formatter = make_formatter("json", _SECRETS) if _JSON else None
        redactor = Redactor(_SECRETS)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(
                    json_formatter
                    or RedactingFormatter(handler.formatter or logging.Formatter(), redactor)
                )


logger_class = RoomrecLogger

try:
    _SERVER: ServerSettings = load_settings(ServerSettingsSchema(), os.environ)
except ConfigurationError as exc:
    raise SystemExit(str(exc)) from None

# A body this long is read ahead under the body deadline; the app refuses anything over 64 KiB.
_BODY_READ_AHEAD = 128 * 1024
# As webhooks.problems writes them (not imported: the master never loads the app).
_BODY_TIMEOUT_ANSWER = json.dumps(
    {
        "type": "https://roomrec.dev/problems/request-timeout",
        "title": "Request timeout",
        "status": 408,
        "detail": "The request body did not arrive in time.",
    }
).encode()


class _ReadAhead:
    """A body reader that gives the bytes read ahead first, then what ``rest`` still holds."""

    def __init__(self, data: bytes, rest: Body) -> None:
        self.data = data
        self.rest = rest

    def read(self, size: int) -> bytes:
        if self.data:
            chunk, self.data = self.data[:size], self.data[size:]
            return chunk
        return bytes(self.rest.read(size))


class BoundedGeventWorker(GeventWorker):
    """gunicorn's gevent worker with deadlines on a request's head and body.

    gunicorn 27 has neither: its gevent worker bounds only the wait for the next request on a
    kept-alive connection (``keepalive``, the :meth:`timeout_ctx` around reading each request's
    line and headers), and leaves a trickling body to the app for as long as it trickles.
    """

    header_timeout = _SERVER.header_timeout
    body_timeout = _SERVER.body_timeout

    def timeout_ctx(self) -> gevent.Timeout:
        # Around each request's line and headers, the first one's too (keepalive is > 0).
        return gevent.Timeout(self.header_timeout, False)

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        """Read the body ahead within ``body_timeout``, then serve the request; a body late
        gets a ``408`` and the connection is closed."""
        if req._expected_100_continue:
            # What gunicorn's wsgi.create does, which comes too late here: the client waits for
            # it before sending the body.
            util.write(sock, b"HTTP/1.1 100 Continue\r\n\r\n")
            req._expected_100_continue = False
        data: bytes | None = None
        with gevent.Timeout(self.body_timeout, False):
            data = bytes(req.body.read(_BODY_READ_AHEAD))
        if data is None:
            self.log.info("closing a connection whose request body is late: %s", addr)
            try:
                util.write(sock, self._timeout_answer())
            except OSError:
                pass
            raise StopIteration()
        req.body = Body(_ReadAhead(data, req.body))
        served = super().handle_request(listener_name, req, sock, addr)
        # gevent switches only when a socket would block: a client whose next request is
        # already here (pipelined, or sent at once from another core) would keep the process
        # to itself. Let the other connections' greenlets run between two of its requests.
        gevent.sleep(0)
        return served

    @staticmethod
    def _timeout_answer() -> bytes:
        head = (
            "HTTP/1.1 408 Request Timeout\r\n"
            "Content-Type: application/problem+json\r\n"
            f"Content-Length: {len(_BODY_TIMEOUT_ANSWER)}\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode() + _BODY_TIMEOUT_ANSWER


worker_class = BoundedGeventWorker
worker_connections = _SERVER.worker_connections
# gunicorn's gevent worker applies its header deadline (timeout_ctx) only with keep-alive on.
keepalive = max(1, round(_SERVER.header_timeout))
workers = _SERVER.workers
graceful_timeout = 20

if not _SERVER.trust_proxy_headers:
    # gunicorn's defaults trust X-Forwarded-Proto/-Protocol/-Ssl and SCRIPT_NAME/PATH_INFO
    # headers from loopback (and any peer of a UNIX socket): off unless the operator says so.
    forwarded_allow_ips = ""
    secure_scheme_headers: dict[str, str] = {}
    forwarder_headers = ""
