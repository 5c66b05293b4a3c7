"""Fixtures for the emulator tests: one real emulator subprocess per session (emptied per
test by ``twilio``, see tests/support/emulator.py), a Twilio-auth HTTP session, the OpenAPI
spec (skipped when absent) and a real callback receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from emulator.client import EmulatorProcess
from tests.support.emulator import emulator_fixture

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "emulator-test-auth-token"
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "emulator-test-api-secret"
SPEC_PATH = (
    Path(__file__).resolve().parents[2].parent / "shared" / "twilio" / "twilio_video_v1.json"
)


@dataclass(frozen=True)
class Credentials:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    api_key_sid: str = API_KEY_SID
    api_key_secret: str = API_KEY_SECRET


@pytest.fixture(scope="session")
def creds() -> Credentials:
    """The credentials the session's emulator accepts (a fixture, so tests need no imports)."""
    return Credentials()


# One emulator for the emulator tests, with an API key; ``twilio`` and ``control`` empty it.
emulator = emulator_fixture(
    "session",
    account_sid=ACCOUNT_SID,
    auth_token=AUTH_TOKEN,
    api_key_sid=API_KEY_SID,
    api_key_secret=API_KEY_SECRET,
)


@pytest.fixture
def base_url(twilio: EmulatorProcess) -> str:
    return twilio.url


@pytest.fixture
def api(twilio: EmulatorProcess) -> Iterator[requests.Session]:
    """A session authenticated with the account SID and auth token."""
    with requests.Session() as session:
        session.auth = (ACCOUNT_SID, AUTH_TOKEN)
        yield session


@pytest.fixture(scope="session")
def twilio_spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"Twilio OpenAPI spec not found at {SPEC_PATH}; spec conformance not checked")
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


@dataclass
class ReceivedCallback:
    method: str
    url: str
    content_type: str
    params: dict[str, str]
    signature_valid: bool
    user_agent: str
    # Whatever the receiver's ``inspect`` hook returned when the callback arrived.
    observed: Any = None


@dataclass
class CallbackReceiver:
    """A real HTTP server on loopback that records callbacks and checks their signatures."""

    url: str
    received: list[ReceivedCallback] = field(default_factory=list)
    inspect: Callable[[dict[str, str]], Any] | None = None
    status: int = 204


def _receiver_app(receiver: CallbackReceiver) -> Callable[..., Any]:
    validator = RequestValidator(AUTH_TOKEN)

    @Request.application
    def app(request: Request) -> Response:
        if request.method == "POST":
            params = request.form.to_dict()
            signed_url = request.url
            valid = validator.validate(
                signed_url, request.form, request.headers.get("X-Twilio-Signature", "")
            )
        else:
            params = request.args.to_dict()
            # The signature covers the URL exactly as sent, query string included.
            signed_url = f"{request.host_url.rstrip('/')}{request.environ['RAW_URI']}"
            valid = validator.validate(
                signed_url, {}, request.headers.get("X-Twilio-Signature", "")
            )
        observed = receiver.inspect(params) if receiver.inspect else None
        receiver.received.append(
            ReceivedCallback(
                method=request.method,
                url=signed_url,
                content_type=request.headers.get("Content-Type", ""),
                params=params,
                signature_valid=valid,
                user_agent=request.headers.get("User-Agent", ""),
                observed=observed,
            )
        )
        return Response(status=receiver.status)

    return app


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    holder = CallbackReceiver(url="")
    server = make_server("127.0.0.1", 0, _receiver_app(holder), threaded=True)
    holder.url = f"http://127.0.0.1:{server.server_port}/twilio/room-events"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield holder
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
