from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from requests.structures import CaseInsensitiveDict
from twilio.http.response import Response
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response as WsgiResponse

from schemas import RoomRecording
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, sid
from tests.unit.schemas.factories import recording_resource
from tests.unit.workers.helpers import LocalServer, worker_settings
from workers.errors import NotFoundYet, PermanentError, TransientError
from workers.twilio.client import TwilioVideo, check, load_recording

Start = Callable[..., LocalServer]
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "api-key-secret-Zx81Qw3"


def twilio_error(status: int, code: int, message: str = "Something went wrong") -> str:
    return json.dumps({
        "code": code, "message": message, "status": status,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
    })  # fmt: skip


def response(status: int, text: str = "", **headers: str) -> Response:
    return Response(status, text, CaseInsensitiveDict(headers))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- check() -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 301, 302, 307])
def test_success_and_redirects_pass(status: int) -> None:
    answer = response(status, "{}")

    assert check(answer, "fetch of recording RT1") is answer


def test_404_is_not_found_yet() -> None:
    with pytest.raises(NotFoundYet) as caught:
        check(response(404, twilio_error(404, 20404)), "fetch of recording RT1")

    assert isinstance(caught.value, TransientError)
    assert "20404" in str(caught.value)


@pytest.mark.parametrize("header", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_429_with_retry_after_seconds(header: str) -> None:
    with pytest.raises(TransientError) as caught:
        check(response(429, twilio_error(429, 20429), **{header: "3"}), "fetch of recording RT1")

    assert type(caught.value) is TransientError
    assert caught.value.retry_after == 3.0
    assert "20429" in str(caught.value)
    assert "429" in str(caught.value)


def test_429_with_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    with pytest.raises(TransientError) as caught:
        check(response(429, twilio_error(429, 20429), **{"Retry-After": when}), "fetch")

    assert caught.value.retry_after is not None
    assert 115 <= caught.value.retry_after <= 120


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses(status: int) -> None:
    with pytest.raises(TransientError) as caught:
        check(response(status, twilio_error(status, 20500)), "fetch of recording RT1")

    assert not isinstance(caught.value, NotFoundYet)
    assert caught.value.retry_after is None
    assert str(status) in str(caught.value)


@pytest.mark.parametrize(
    ("status", "code"), [(400, 20001), (401, 20003), (403, 20003), (405, 20004), (422, 20422)]
)
def test_permanent_statuses(status: int, code: int) -> None:
    with pytest.raises(PermanentError) as caught:
        check(
            response(status, twilio_error(status, code, "Authenticate")), "fetch of recording RT1"
        )

    assert not isinstance(caught.value, TransientError)
    assert str(code) in str(caught.value)
    assert "fetch of recording RT1" in str(caught.value)


@pytest.mark.parametrize("body", ["", "<html>Bad Gateway</html>", "[1, 2]", "null"])
def test_errors_without_a_twilio_body_still_raise(body: str) -> None:
    with pytest.raises(TransientError) as caught:
        check(response(502, body), "fetch of recording RT1")

    assert "502" in str(caught.value)


# --- load_recording() --------------------------------------------------------------------------


def test_load_recording_reads_a_resource() -> None:
    resource = recording_resource()

    recording = load_recording(json.dumps(resource), "fetch of recording")

    assert isinstance(recording, RoomRecording)
    assert recording.sid == resource["sid"]
    assert recording.raw == resource


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("<html>oops</html>", id="html"),
        pytest.param("", id="empty"),
        pytest.param("[]", id="array"),
        pytest.param(json.dumps([recording_resource()]), id="array-of-resource"),
        pytest.param("null", id="null"),
        pytest.param('"RT"', id="string"),
        pytest.param('{"sid": "RT123", "status": "completed"}', id="bad-sid"),
        pytest.param(json.dumps(recording_resource(status="exploded")), id="bad-status"),
        pytest.param(json.dumps(recording_resource(size="12")), id="string-size"),
        pytest.param('{"sid": ', id="truncated"),
        pytest.param('{"links": ' + "[" * 100_000, id="deeply-nested"),
    ],
)
def test_load_recording_rejects_anything_else_permanently(text: str) -> None:
    with pytest.raises(PermanentError) as caught:
        load_recording(text, "fetch of recording RT1")

    assert "fetch of recording RT1" in str(caught.value)


# --- TwilioVideo against a real local server ---------------------------------------------------


def twilio_answer(status: int, body: str, **headers: str) -> Callable[..., WsgiResponse]:
    def answer(request: Request, release: threading.Event) -> WsgiResponse:
        return WsgiResponse(body, status=status, headers=headers, mimetype="application/json")

    return answer


def video(base_url: str, **env: str) -> TwilioVideo:
    # A generous timeout: a loaded machine must not turn an answer into a timeout; the timeout
    # test sets its own.
    settings = {"TWILIO_VIDEO_BASE_URL": base_url, "TWILIO_TIMEOUT": "5"} | env
    return TwilioVideo(worker_settings(**settings))


def test_fetch_recording_calls_the_room_level_resource(local_server: Start) -> None:
    room, recording_sid = sid("RM"), sid("RT")
    resource = recording_resource(room, recording_sid)
    server = local_server(twilio_answer(200, json.dumps(resource)))

    recording = video(server.url).fetch_recording(room, recording_sid)

    assert recording.sid == recording_sid
    assert recording.raw == resource
    [seen] = server.seen
    assert (seen.method, seen.path) == ("GET", f"/v1/Rooms/{room}/Recordings/{recording_sid}")
    expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert seen.headers["Authorization"] == f"Basic {expected}"


def test_fetch_recording_uses_the_api_key_when_set(local_server: Start) -> None:
    room, recording_sid = sid("RM"), sid("RT")
    server = local_server(twilio_answer(200, json.dumps(recording_resource(room, recording_sid))))

    video(
        server.url, TWILIO_API_KEY_SID=API_KEY_SID, TWILIO_API_KEY_SECRET=API_KEY_SECRET
    ).fetch_recording(room, recording_sid)

    expected = base64.b64encode(f"{API_KEY_SID}:{API_KEY_SECRET}".encode()).decode()
    assert server.seen[0].headers["Authorization"] == f"Basic {expected}"


def assert_no_secrets(text: str) -> None:
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    for secret in (AUTH_TOKEN, credentials, "Authorization", "Basic "):
        assert secret not in text


@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [
        (401, PermanentError, {}),
        (403, PermanentError, {}),
        (404, NotFoundYet, {}),
        (429, TransientError, {"Retry-After": "4"}),
        (503, TransientError, {}),
    ],
)
def test_fetch_errors_are_translated_without_secrets(
    local_server: Start, caplog: pytest.LogCaptureFixture, status: int,
    error: type[Exception], headers: dict[str, str],
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    server = local_server(twilio_answer(status, twilio_error(status, 20000 + status), **headers))

    with pytest.raises(error) as caught:
        video(server.url).fetch_recording(sid("RM"), sid("RT"))

    assert str(20000 + status) in str(caught.value)
    assert_no_secrets(str(caught.value))
    assert_no_secrets(caplog.text)
    if "Retry-After" in headers:
        assert isinstance(caught.value, TransientError)
        assert caught.value.retry_after == 4.0


def test_request_errors_never_show_the_url_query(local_server: Start) -> None:
    server = local_server(twilio_answer(500, twilio_error(500, 20500)))
    recording_sid = sid("RT")

    with pytest.raises(TransientError) as caught:
        video(server.url).request(
            "GET", f"/v1/Recordings/{recording_sid}/Media?Ttl=600&Signature=s3cr3t-query",
            f"media of {recording_sid}",
        )  # fmt: skip

    assert server.seen[0].query == "Ttl=600&Signature=s3cr3t-query"
    assert "s3cr3t-query" not in str(caught.value)
    assert "Ttl=600" not in str(caught.value)


def test_connection_refused_is_transient_without_url_or_secrets() -> None:
    base_url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(TransientError) as caught:
        video(base_url).request("GET", "/v1/Recordings?Token=s3cr3t-query", "list of recordings")

    assert "s3cr3t-query" not in str(caught.value)
    assert_no_secrets(str(caught.value))


def test_timeout_is_transient(local_server: Start) -> None:
    def slow(request: Request, release: threading.Event) -> WsgiResponse:
        release.wait(5)
        return WsgiResponse("{}", status=200)

    server = local_server(slow)

    with pytest.raises(TransientError) as caught:
        video(server.url, TWILIO_TIMEOUT="0.5").fetch_recording(sid("RM"), sid("RT"))

    assert "timed out" in str(caught.value)


@pytest.mark.parametrize(
    "body", ["<html>ok</html>", "[]", json.dumps({"sid": "RT1", "status": "completed"})]
)
def test_a_malformed_200_is_permanent(local_server: Start, body: str) -> None:
    server = local_server(twilio_answer(200, body))

    with pytest.raises(PermanentError):
        video(server.url).fetch_recording(sid("RM"), sid("RT"))


def test_redirects_are_not_followed(local_server: Start) -> None:
    elsewhere = local_server(twilio_answer(200, json.dumps(recording_resource())))
    server = local_server(twilio_answer(302, "", Location=f"{elsewhere.url}/signed?X=1"))

    with pytest.raises(PermanentError):
        video(server.url).fetch_recording(sid("RM"), sid("RT"))

    assert elsewhere.seen == []
