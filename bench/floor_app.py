"""The ingest floor: the least any endpoint that durably queues a callback must do, served by
the same gunicorn command line as the real web (``gunicorn "bench.floor_app:create_app()"``).

It reads the body and pushes it, as it came, onto a Redis list with one ``LPUSH`` over one
connection per process: no signature, no schema, no de-duplication, no log line, no metrics.
No real endpoint can be cheaper than this while still answering only once the callback is on
the queue, so its rate against bare Flask bounds the ingest ratio any implementation can
reach on the machine at hand."""

from __future__ import annotations

import os

import redis
from flask import Flask, Response, request

from bench.callbacks import CALLBACK_PATH

FLOOR_QUEUE = "bench:floor"


def create_app() -> Flask:
    app = Flask(__name__)
    url = os.environ["REDIS_URL"]
    clients: dict[int, redis.Redis] = {}

    def client() -> redis.Redis:  # one connection per process, made after gunicorn's fork
        pid = os.getpid()
        if pid not in clients:
            clients[pid] = redis.Redis.from_url(url, single_connection_client=True)
        return clients[pid]

    def enqueue() -> Response:
        client().lpush(FLOOR_QUEUE, request.get_data(cache=False))
        response = Response(status=204)
        del response.headers["Content-Type"]
        return response

    def healthz() -> Response:
        return Response(status=204)

    app.add_url_rule(CALLBACK_PATH, "callback", enqueue, methods=["GET", "POST"])
    app.add_url_rule("/healthz", "healthz", healthz)
    return app
