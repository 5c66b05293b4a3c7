"""A WSGI app that answers with what the server told it about the request's URL, for tests of
gunicorn's settings (``gunicorn -c gunicorn.conf.py tests.support.wsgi_probe:app``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

KEYS = ("wsgi.url_scheme", "SCRIPT_NAME", "PATH_INFO", "HTTP_HOST")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
