"""The ingest baseline: a bare Flask view answering ``204`` to any callback, served by the
same gunicorn command line as the real web (``gunicorn "bench.bare_app:create_app()"``).

It reads nothing, checks nothing and queues nothing: the rate of the web tier itself."""

from __future__ import annotations

from flask import Flask, Response

from bench.callbacks import CALLBACK_PATH


def _no_content() -> Response:
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def create_app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule(CALLBACK_PATH, "callback", _no_content, methods=["GET", "POST"])
    app.add_url_rule("/healthz", "healthz", _no_content)
    return app
