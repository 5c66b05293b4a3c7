"""Sending signed callbacks to the app and reading back what it queued."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import redis
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from tests.support.twilio import AUTH_TOKEN, sign
from webhooks.intake.views import CALLBACK_PATH

FORM = "application/x-www-form-urlencoded"
PROBLEM = "application/problem+json"
# The URL the test client calls by default.
LOCAL_URL = "http://localhost" + CALLBACK_PATH
EVENTS_QUEUE = "roomrec.events"


def post_callback(
    client: FlaskClient,
    params: Mapping[str, str],
    *,
    url: str = LOCAL_URL,
    token: str = AUTH_TOKEN,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> TestResponse:
    """POST ``params`` as Twilio does, signed for ``url`` (plus ``?query`` if given)."""
    signed_url = f"{url}?{query}" if query else url
    path = f"{CALLBACK_PATH}?{query}" if query else CALLBACK_PATH
    all_headers = {"X-Twilio-Signature": sign(signed_url, dict(params), token)}
    all_headers.update(headers or {})
    return client.post(
        path, data=urlencode(params), content_type=FORM, headers=all_headers, **kwargs
    )


def get_callback(
    client: FlaskClient, params: Mapping[str, str], *, token: str = AUTH_TOKEN
) -> TestResponse:
    """GET with ``params`` in the query string, the URL alone signed (StatusCallbackMethod=GET)."""
    query = urlencode(params)
    signature = sign(f"{LOCAL_URL}?{query}", None, token)
    return client.get(f"{CALLBACK_PATH}?{query}", headers={"X-Twilio-Signature": signature})


def sign_pairs(url: str, pairs: Iterable[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """The signature of a body whose parameters may repeat."""
    return RequestValidator(token).compute_signature(url, MultiDict(list(pairs)))


def queued(redis_url: str) -> list[dict[str, Any]]:
    """The Celery messages on the events queue, oldest first: each envelope's ``headers`` and
    the task's ``args`` (the kombu body is base64 of the JSON ``[args, kwargs, embed]``)."""
    client = redis.Redis.from_url(redis_url)
    try:
        raws = client.lrange(EVENTS_QUEUE, 0, -1)
    finally:
        client.close()
    messages = []
    for raw in reversed(raws):  # kombu LPUSHes, workers BRPOP
        envelope = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        messages.append({"headers": envelope["headers"], "args": args, "kwargs": kwargs})
    return messages


def seen_marks(redis_url: str) -> list[str]:
    """The de-duplication marks the enqueuer left in Redis."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return [str(key) for key in client.keys("roomrec:seen:*")]
    finally:
        client.close()


def assert_problem(response: TestResponse, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem document with ``status``; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = json.loads(response.get_data())
    assert body["status"] == status
    assert body["type"].startswith("https://roomrec.dev/problems/")
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body
