"""The ingest floors: the least any endpoint that durably queues a callback must do, served by
the same gunicorn command line as the real web.

- ``create_app()`` (the floor): read the body and push it, as it came, onto a Redis list with
  one ``LPUSH``, written by hand over one socket per process (no client library, no pool).
  No signature, no schema, no de-duplication, no log line, no metrics.
- ``create_checked_app()`` (the checked floor): the same, after the two checks the product
  may not skip: Twilio's signature and the marshmallow schema of the event, with the real
  endpoint's own functions (``webhooks.params``, ``webhooks.signature``, ``schemas``).

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
from webhooks.params import parse_params, single_valued
from webhooks.signature import SIGNATURE_HEADER, verify_signature

FLOOR_QUEUE = "bench:floor"


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def _pusher(redis_url: str) -> Callable[[bytes], None]:
    """``LPUSH FLOOR_QUEUE body`` in RESP over one connection per process (made after the
    fork), waiting for Redis' answer."""
    parts = urlsplit(redis_url)
    sockets: dict[int, socket.socket] = {}
    head = f"*3\r\n$5\r\nLPUSH\r\n${len(FLOOR_QUEUE)}\r\n{FLOOR_QUEUE}\r\n".encode()

    def push(body: bytes) -> None:
        pid = os.getpid()
        if pid not in sockets:
            connection = socket.create_connection((parts.hostname, parts.port or 6379))
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets[pid] = connection
        connection = sockets[pid]
        connection.sendall(b"%s$%d\r\n%s\r\n" % (head, len(body), body))
        answer = connection.recv(64)
        if not answer.startswith(b":"):
            raise RuntimeError(f"LPUSH answered {answer!r}")

    return push


def _app(handle: Callable[[], Response]) -> Flask:
    app = Flask(__name__)
    app.add_url_rule(CALLBACK_PATH, "callback", handle, methods=["GET", "POST"])
    app.add_url_rule("/healthz", "healthz", _no_content)
    return app


def create_app() -> Flask:
    push = _pusher(os.environ["REDIS_URL"])

    def enqueue() -> Response:
        push(request.get_data(cache=False))
        return _no_content()

    return _app(enqueue)


def create_checked_app() -> Flask:
    push = _pusher(os.environ["REDIS_URL"])
    url = os.environ["PUBLIC_BASE_URL"].rstrip("/") + CALLBACK_PATH
    tokens = [os.environ["TWILIO_AUTH_TOKEN"]]

    def enqueue() -> Response:
        body = request.get_data(cache=False)
        pairs = parse_params(body)
        verify_signature(url, pairs, request.headers.get(SIGNATURE_HEADER), tokens)
        load_callback(single_valued(pairs))
        push(body)
        return _no_content()

    return _app(enqueue)
