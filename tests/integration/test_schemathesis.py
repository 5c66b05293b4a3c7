"""schemathesis against the live app, over HTTP on loopback, with the document it serves.

Every generated callback that carries an ``X-Twilio-Signature`` is signed for real (the session
below signs what is actually sent), so the generated parameters reach validation and the queue
(a private Redis) instead of all stopping at 403; cases without the header get 403. The read
API is called with the right bearer token on a SQLite store. No answer may be a 5xx, and every
answer must be one the document lists, with the documented content type, headers and body.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.serving import WSGIRequestHandler, make_server

from devtools.redis_server import RedisServer, free_port
from tests.support.twilio import AUTH_TOKEN
from webhooks import create_app
from webhooks.api.openapi import OPENAPI_PATH, openapi_document
from webhooks.api.views import api_state
from webhooks.app_state import app_state
from webhooks.intake.signature import SIGNATURE_HEADER
from webhooks.intake.state import intake_state
from webhooks.intake.views import CALLBACK_PATH

pytestmark = pytest.mark.integration

API_TOKEN = "schemathesis-api-token-0123456789"
EXAMPLES = 60  # per operation and mode: the whole file runs in about 15 s
CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_headers_conformance, response_schema_conformance,
]  # fmt: skip
DOCUMENTED = {
    f"{method.upper()} {path}": operation
    for path, operations in openapi_document()["paths"].items()
    if path != OPENAPI_PATH  # the document itself: tests/unit/webhooks/api/test_openapi.py
    for method, operation in operations.items()
}


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class SigningSession(requests.Session):
    """Signs each callback request that carries the signature header, over what is sent."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        if urlsplit(url).path == CALLBACK_PATH and SIGNATURE_HEADER in request.headers:
            pairs: list[tuple[str, str]] = []
            if request.method == "POST":
                body = request.body or b""
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
                pairs = parse_qsl(text, keep_blank_values=True)
            signature = RequestValidator(AUTH_TOKEN).compute_signature(url, MultiDict(pairs))
            request.headers[SIGNATURE_HEADER] = signature
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def live_url(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a real HTTP server on loopback, with its own Redis database emptied."""
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.close()
    directory = tmp_path_factory.mktemp("schemathesis")
    port = free_port()
    app = create_app({
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_server.url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SPOOL_PATH": str(directory / "spool.sqlite3"), "API_TOKEN": API_TOKEN,
        "DATABASE_URL": f"sqlite:///{Path(directory) / 'store.db'}", "LOG_LEVEL": "ERROR",
    })  # fmt: skip
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()
    intake_state(app).relay.stop()
    app_state(app).enqueuer.close()
    api_state(app).close()


@pytest.fixture(scope="module")
def live_schema(live_url: str) -> Any:
    """The document as the live app serves it."""
    return schemathesis.openapi.from_url(live_url + OPENAPI_PATH)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", sorted(DOCUMENTED))
def test_no_server_error_and_no_answer_the_document_does_not_describe(
    live_url: str, live_schema: Any, label: str, mode: GenerationMode
) -> None:
    operation = live_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served document"
    documented = DOCUMENTED[label]
    if mode is GenerationMode.NEGATIVE and not _has_inputs(documented):
        pytest.skip(f"{label} takes no input to make invalid")
    headers = {"Authorization": f"Bearer {API_TOKEN}"} if "security" in documented else None
    session = SigningSession()

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def check(case: Any) -> None:
        response = case.call(base_url=live_url, session=session, timeout=10)
        case.validate_response(response, checks=CHECKS)

    try:
        check()
    finally:
        session.close()


def _has_inputs(definition: dict[str, Any]) -> bool:
    return bool(definition.get("parameters") or definition.get("requestBody"))
