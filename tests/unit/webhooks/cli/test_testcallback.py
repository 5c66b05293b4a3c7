"""``flask send-test-callback``: realistic parameters, Twilio's signature, and a real send to
the app served over HTTP on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from twilio.request_validator import RequestValidator
from werkzeug.serving import WSGIRequestHandler, make_server

from devtools.redis_server import free_port
from schemas import load_callback
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.unit.webhooks.cli_helpers import invoke, json_out
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import queued
from webhooks.cli.testcallback import EVENTS, callback_params, sign
from workers.delivery.dedup import event_id


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def app(make_app: AppFactory, port: int) -> Flask:
    """The app, its signatures bound to where :func:`served` serves it."""
    return make_app(PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")


@pytest.fixture
def served(app: Flask, port: int) -> Iterator[str]:
    """The callback URL of ``app`` served on 127.0.0.1."""
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)  # fmt: skip
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/twilio/room-events"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_is_a_valid_callback(event: str) -> None:
    params = callback_params(event, account_sid=ACCOUNT_SID)

    loaded = load_callback(params)

    assert loaded.event == event and loaded.account_sid == ACCOUNT_SID
    assert loaded.raw["RoomrecSource"] == "test-callback"
    assert callback_params(event, account_sid=ACCOUNT_SID)["RoomSid"] != params["RoomSid"]


def test_given_sids_are_used() -> None:
    params = callback_params("recording-completed", account_sid=ACCOUNT_SID,
                             room_sid="RM" + "a" * 32, recording_sid="RT" + "b" * 32)  # fmt: skip

    assert (params["RoomSid"], params["RecordingSid"]) == ("RM" + "a" * 32, "RT" + "b" * 32)


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event"):
        callback_params("room-exploded", account_sid=ACCOUNT_SID)


@pytest.mark.parametrize(
    "url",
    [
        "https://rec.example.com/twilio/room-events",
        "https://rec.example.com/twilio/room-events?tenant=7",
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_signature_is_twilios(url: str, method: str) -> None:
    params = callback_params("room-ended", account_sid=ACCOUNT_SID)

    signed = sign(url, params, AUTH_TOKEN, method)

    validator = RequestValidator(AUTH_TOKEN)
    signature = signed.headers["X-Twilio-Signature"]
    if method == "POST":
        assert signed.url == url and signed.data == params
        assert validator.validate(url, params, signature)
    else:
        assert signed.data is None and signed.url.startswith(url)
        assert signed.url.count("?") == 1
        assert validator.validate(signed.url, {}, signature)
    assert not RequestValidator("another-token").validate(signed.url, signed.data or {}, signature)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_callback_the_app_accepts(app: Flask, served: str, redis_url: str, method: str) -> None:
    result = invoke(app, "send-test-callback", served, "--event", "room-ended",
                    "--method", method)  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{method} {served} room-ended: 204")
    [message] = queued(redis_url)
    params = message["args"][0]["params"]
    assert params["StatusCallbackEvent"] == "room-ended"
    assert params["RoomrecSource"] == "test-callback"


def test_json_output(app: Flask, served: str, redis_url: str) -> None:
    result = invoke(app, "send-test-callback", served, "--event", "recording-completed",
                    "--account-sid", ACCOUNT_SID, "--json")  # fmt: skip

    document = json_out(result)
    assert result.exit_code == 0
    assert (document["status"], document["ok"], document["duplicate"]) == (204, True, False)
    assert document["body"] is None and document["params"]["AccountSid"] == ACCOUNT_SID
    [message] = queued(redis_url)
    assert message["args"][0]["id"] == event_id(document["params"])


def test_a_wrong_token_shows_the_problem_and_fails(app: Flask, served: str,
                                                   redis_url: str) -> None:  # fmt: skip
    result = invoke(app, "send-test-callback", served, "--auth-token", "not-the-token")

    assert result.exit_code == 1
    assert ": 403" in result.stdout
    assert '"status": 403' in result.stdout and "X-Twilio-Signature" in result.stdout
    assert queued(redis_url) == []


def test_the_problem_is_in_the_json(app: Flask, served: str) -> None:
    result = invoke(app, "send-test-callback", served, "--auth-token", "nope", "--json")

    document = json_out(result)
    assert result.exit_code == 1
    assert document["ok"] is False and document["body"]["status"] == 403


def test_an_unreachable_url_fails_in_one_line(app: Flask, closed_url: str) -> None:
    url = closed_url.replace("redis://", "http://").removesuffix("/0") + "/twilio/room-events"

    result = invoke(app, "send-test-callback", url, "--timeout", "2")

    assert result.exit_code == 1
    assert "did not answer: ConnectionError" in result.stderr


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http:///path"])
def test_a_url_that_is_not_http_is_a_usage_error(app: Flask, url: str) -> None:
    result = invoke(app, "send-test-callback", url)

    assert result.exit_code == 2
    assert "not an http(s) URL" in result.stderr


def test_an_account_of_twilio_accounts_is_signed_with_its_own_token(
    make_app: AppFactory, port: int, redis_url: str
) -> None:
    other = "AC" + "5" * 32
    app = make_app(
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", TWILIO_AUTH_TOKEN=None,
        TWILIO_ACCOUNTS=f'{{"{other}": {{"auth_token": "other-account-token"}}}}',
    )  # fmt: skip
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)  # fmt: skip
    thread.start()
    url = f"http://127.0.0.1:{port}/twilio/room-events"
    try:
        refused = invoke(app, "send-test-callback", url)
        sent = invoke(app, "send-test-callback", url, "--account-sid", other)
    finally:
        server.shutdown()
        server.server_close()

    assert refused.exit_code == 1 and "--auth-token" in refused.output
    assert sent.exit_code == 0, sent.output
    [message] = queued(redis_url)
    assert message["args"][0]["params"]["AccountSid"] == other
