"""The ingest floors: the least any endpoint that durably queues a callback must do, served by
the same gunicorn command line as the real web.

- ``create_app()`` (the floor): read the body and push it, as it came, onto a Redis list with
  one ``LPUSH``, written by hand over one socket per process (no client library, no pool).
  No signature, no schema, no de-duplication, no log line, no metrics.
- ``create_checked_app()`` (the checked floor): the same, after the two checks the product
  may not skip: Twilio's signature and the marshmallow schema of the event, with the real
  endpoint's own functions (``webhooks.intake.params``, ``webhooks.intake.signature``, ``schemas``).

No endpoint can answer faster than the floor once the callback is on the queue, nor than the
checked floor if it also verifies and validates as the service must: their rates against
bare Flask bound the ingest ratio any implementation can reach on the machine at hand."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, Response, request

from bench.callbacks import CALLBACK_PATH
from schemas import load_callback
from webhooks.intake.params import parse_params, single_valued
from webhooks.intake.signature import SIGNATURE_HEADER, verify_signature

FLOOR_QUEUE = "bench:floor"


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


class _Pusher:
    """``LPUSH FLOOR_QUEUE body`` in RESP, waiting for Redis' answer, over connections of this
    process (made after the fork) kept for good: one per push in flight at once, so one per
    process under a sync worker, and under the gevent worker one per concurrent greenlet (a
    socket serves one greenlet at a time)."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.address = (parts.hostname or "localhost", parts.port or 6379)
        self.pid = os.getpid()
        self.idle: list[socket.socket] = []
        self.head = f"*3\r\n$5\r\nLPUSH\r\n${len(FLOOR_QUEUE)}\r\n{FLOOR_QUEUE}\r\n".encode()

    def __call__(self, body: bytes) -> None:
        if self.pid != os.getpid():  # forked: the parent's sockets are not ours to use
            self.pid, self.idle = os.getpid(), []
        if self.idle:
            connection = self.idle.pop()
        else:
            connection = socket.create_connection(self.address)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            connection.sendall(b"%s$%d\r\n%s\r\n" % (self.head, len(body), body))
            answer = connection.recv(64)
        except BaseException:
            connection.close()
            raise
        if not answer.startswith(b":"):
            connection.close()
            raise RuntimeError(f"LPUSH answered {answer!r}")
        self.idle.append(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def close(app: Flask) -> None:
    """Close the floor's connections (gunicorn's workers just exit)."""
    app.extensions["floor_pusher"].close()


def _app(handle: Callable[[], Response], push: _Pusher) -> Flask:
    app = Flask(__name__)
    app.extensions["floor_pusher"] = push
    app.add_url_rule(CALLBACK_PATH, "callback", handle, methods=["GET", "POST"])
    app.add_url_rule("/healthz", "healthz", _no_content)
    return app


def create_app() -> Flask:
    push = _Pusher(os.environ["REDIS_URL"])

    def enqueue() -> Response:
        push(request.get_data(cache=False))
        return _no_content()

    return _app(enqueue, push)


def create_checked_app() -> Flask:
    push = _Pusher(os.environ["REDIS_URL"])
    url = os.environ["PUBLIC_BASE_URL"].rstrip("/") + CALLBACK_PATH
    tokens = [os.environ["TWILIO_AUTH_TOKEN"]]

    def enqueue() -> Response:
        body = request.get_data(cache=False)
        pairs = parse_params(body)
        verify_signature(url, pairs, request.headers.get(SIGNATURE_HEADER), tokens)
        load_callback(single_valued(pairs))
        push(body)
        return _no_content()

    return _app(enqueue, push)
