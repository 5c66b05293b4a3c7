"""The signature checks through a real gunicorn on loopback: the URL fixed by PUBLIC_BASE_URL
whatever Host a request names, a SharedKey signature, and HTTP Basic credentials."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from twilio.request_validator import RequestValidator

from devtools.processes import ManagedProcess, gunicorn_web
from devtools.redis_server import RedisServer, free_port
from tests.support.twilio import AUTH_TOKEN, recording_params, sign

PROD = "https://prod.example/twilio/room-events"
STAGING = "https://staging.example/twilio/room-events"
KEY_ID = "webhooks_sharedkey_integration"
KEY_SECRET = "integration-shared-key-secret-0042"
BASIC = ("twilio", "integration-basic-pw")


@pytest.fixture(scope="module")
def web(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gunicorn web bound to https://prod.example, with a SharedKey and Basic credentials."""
    directory = tmp_path_factory.mktemp("binding")
    port = free_port()
    config = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_server.url,
        "SPOOL_PATH": str(directory / "spool.sqlite3"), "PUBLIC_BASE_URL": "https://prod.example",
        "TWILIO_WEBHOOK_SHARED_KEYS": f"{KEY_ID}={KEY_SECRET}",
        "TWILIO_WEBHOOK_BASIC_AUTH": ":".join(BASIC),
    }  # fmt: skip
    process: ManagedProcess = gunicorn_web(config, Path(directory / "web.log"), port, workers=1)
    try:
        yield f"http://127.0.0.1:{port}/twilio/room-events"
    finally:
        process.stop()
        log = process.log()
        for secret in (AUTH_TOKEN, KEY_SECRET, BASIC[1]):
            assert secret not in log


def post(
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    auth: tuple[str, str] | None = None,
) -> int:
    response = requests.post(url, data=params, headers=headers, auth=auth, timeout=10)
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == "application/problem+json"
    return response.status_code


def test_production_refuses_what_staging_signed_and_takes_its_own(web: str) -> None:
    params = recording_params()
    staging = {"X-Twilio-Signature": sign(STAGING, params), "Host": "staging.example"}
    assert post(web, params, staging, auth=BASIC) == 403
    own = {"X-Twilio-Signature": sign(PROD, params), "Host": "staging.example"}
    assert post(web, params, own, auth=BASIC) == 204


def test_a_shared_key_signature_through_gunicorn(web: str) -> None:
    params = recording_params()
    signature = RequestValidator(KEY_SECRET).compute_signature(PROD, params, "HMAC_SHA256")
    headers = {
        "X-Twilio-Signature": signature,
        "X-Twilio-Webhooks-Signature-Settings": f"key={KEY_ID},algorithm=HMAC_SHA256",
    }
    assert post(web, params, headers, auth=BASIC) == 204
    token_signed = RequestValidator(AUTH_TOKEN).compute_signature(PROD, params, "HMAC_SHA256")
    assert post(web, params, headers | {"X-Twilio-Signature": token_signed}, auth=BASIC) == 403


def test_twilio_is_challenged_for_its_basic_credentials(web: str) -> None:
    params = recording_params()
    headers = {"X-Twilio-Signature": sign(PROD, params)}
    response = requests.post(web, data=params, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="roomrec"'
    wrong = base64.b64encode(b"twilio:wrong").decode()
    assert post(web, params, headers | {"Authorization": f"Basic {wrong}"}) == 401
    assert post(web, params, headers, auth=BASIC) == 204
