from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable
from datetime import datetime

import pytest
from standardwebhooks.webhooks import Webhook
from werkzeug.wrappers import Request, Response

from devtools.receiver import ForwardTarget
from tests.support.twilio import recording_params, room_params
from tests.unit.schemas.factories import CAPTURED_RECORDING_COMPLETED, participant_params
from tests.unit.workers.helpers import FORWARD_SECRET, LocalServer, recording_event, room_event
from workers.errors import PermanentError, TargetGone, TransientError
from workers.handlers import HandlerContext, resolve
from workers.handlers.forward import ForwardHandler, payload

MakeContext = Callable[..., HandlerContext]
Start = Callable[..., LocalServer]


def forwarder(make_context: MakeContext, url: str) -> ForwardHandler:
    handler = resolve("forward")(make_context(FORWARD_URLS=url))
    assert isinstance(handler, ForwardHandler)
    assert list(handler.targets()) == [url]
    return handler


def answering(status: int, **headers: str) -> Callable[[Request, threading.Event], Response]:
    def answer(request: Request, release: threading.Event) -> Response:
        return Response("{}", status=status, headers=headers)

    return answer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- payload() ---------------------------------------------------------------------------------


def test_payload_of_a_recording_event() -> None:
    event = recording_event(dict(CAPTURED_RECORDING_COMPLETED))
    assert event.recording is not None

    body = payload(event)

    assert body["type"] == "recording.completed"
    assert body["timestamp"] == CAPTURED_RECORDING_COMPLETED["Timestamp"]
    assert body["data"]["recording"] == event.recording.raw
    sent = body["data"]["event"]
    assert sent["recording_sid"] == CAPTURED_RECORDING_COMPLETED["RecordingSid"]
    assert sent["room_sid"] == CAPTURED_RECORDING_COMPLETED["RoomSid"]
    assert sent["size"] == 105956
    assert sent["duration"] == 3
    assert sent["offset_from_twilio_video_epoch"] == 155137307765
    assert sent["codec"] == "VP8"
    assert sent["timestamp"] == CAPTURED_RECORDING_COMPLETED["Timestamp"]
    assert json.loads(json.dumps(body)) == body


def test_payload_timestamp_is_the_callback_timestamp_in_utc() -> None:
    params = recording_params(Timestamp="2020-08-20T03:42:05.839174+02:00")

    body = payload(recording_event(params))

    assert body["timestamp"] == "2020-08-20T01:42:05.839174Z"
    assert datetime.fromisoformat(body["timestamp"]) == datetime.fromisoformat(params["Timestamp"])


@pytest.mark.parametrize(
    ("params", "dotted"),
    [
        (room_params("room-created"), "room.created"),
        (participant_params("participant-connected"), "participant.connected"),
    ],
)
def test_payload_of_a_room_event_has_no_recording(params: dict[str, str], dotted: str) -> None:
    body = payload(room_event(params))

    assert body["type"] == dotted
    assert "recording" not in body["data"]
    assert body["data"]["event"]["room_sid"] == params["RoomSid"]
    assert json.loads(json.dumps(body)) == body


# --- ForwardHandler against real local servers ----------------------------------------------


def test_delivery_is_signed_and_carries_the_payload(
    make_context: MakeContext, forward_target: ForwardTarget
) -> None:
    handler = forwarder(make_context, forward_target.url)
    event = recording_event()

    handler(event, forward_target.url)

    assert forward_target.invalid == []
    [delivery] = forward_target.deliveries
    assert delivery.webhook_id == event.id
    assert delivery.body == json.loads(json.dumps(payload(event)))


def test_the_signature_verifies_with_the_standard_webhooks_library(
    make_context: MakeContext, local_server: Start
) -> None:
    server = local_server(answering(204))
    event = recording_event()

    forwarder(make_context, server.url)(event, server.url)

    [seen] = server.seen
    assert seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json"
    verified = Webhook(FORWARD_SECRET).verify(seen.body, seen.headers)
    assert verified == json.loads(json.dumps(payload(event)))
    assert seen.headers["Webhook-Id"] == event.id


def test_a_tampered_body_does_not_verify(make_context: MakeContext, local_server: Start) -> None:
    server = local_server(answering(200))
    event = recording_event()

    forwarder(make_context, server.url)(event, server.url)

    [seen] = server.seen
    with pytest.raises(Exception, match="(?i)signature"):
        Webhook(FORWARD_SECRET).verify(seen.body.replace(b"recording", b"Recording"), seen.headers)


def test_webhook_id_is_the_same_on_every_attempt(
    make_context: MakeContext, forward_target: ForwardTarget
) -> None:
    handler = forwarder(make_context, forward_target.url)
    params = recording_params()
    first, again = recording_event(params), recording_event(dict(params))

    handler(first, forward_target.url)
    handler(again, forward_target.url)

    assert forward_target.invalid == []
    ids = [delivery.webhook_id for delivery in forward_target.deliveries]
    assert ids == [first.id, first.id]


def test_different_events_have_different_webhook_ids(
    make_context: MakeContext, forward_target: ForwardTarget
) -> None:
    handler = forwarder(make_context, forward_target.url)

    handler(recording_event(), forward_target.url)
    handler(recording_event(), forward_target.url)

    first, second = forward_target.deliveries
    assert first.webhook_id != second.webhook_id


@pytest.mark.parametrize("status", [503, 500, 502, 408, 409, 425, 429])
def test_retryable_answers_are_transient(
    make_context: MakeContext, forward_target: ForwardTarget, status: int
) -> None:
    forward_target.answers.append(status)
    handler = forwarder(make_context, forward_target.url)

    with pytest.raises(TransientError) as caught:
        handler(recording_event(), forward_target.url)

    assert str(status) in str(caught.value)
    assert forward_target.invalid == []
    assert len(forward_target.attempts) == 1


def test_429_retry_after_is_passed_on(make_context: MakeContext, local_server: Start) -> None:
    server = local_server(answering(429, **{"Retry-After": "17"}))

    with pytest.raises(TransientError) as caught:
        forwarder(make_context, server.url)(recording_event(), server.url)

    assert caught.value.retry_after == 17.0


def test_410_gone_stops_without_a_retry_or_a_dead_letter(
    make_context: MakeContext, forward_target: ForwardTarget
) -> None:
    forward_target.answers.append(410)

    with pytest.raises(TargetGone) as caught:
        forwarder(make_context, forward_target.url)(recording_event(), forward_target.url)

    assert not isinstance(caught.value, TransientError | PermanentError)
    assert [attempt.status for attempt in forward_target.attempts] == [410]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_refusals_are_permanent(
    make_context: MakeContext, forward_target: ForwardTarget, status: int
) -> None:
    forward_target.answers.append(status)

    with pytest.raises(PermanentError) as caught:
        forwarder(make_context, forward_target.url)(recording_event(), forward_target.url)

    assert not isinstance(caught.value, TransientError)
    assert str(status) in str(caught.value)
    assert forward_target.invalid == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_permanent_and_not_followed(
    make_context: MakeContext, local_server: Start, status: int
) -> None:
    elsewhere = local_server(answering(200))
    server = local_server(answering(status, Location=f"{elsewhere.url}/moved"))

    with pytest.raises(PermanentError):
        forwarder(make_context, server.url)(recording_event(), server.url)

    assert len(server.seen) == 1
    assert elsewhere.seen == []


def test_connection_refused_is_transient(make_context: MakeContext) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks"

    with pytest.raises(TransientError):
        forwarder(make_context, url)(recording_event(), url)


def test_a_slow_receiver_times_out_as_transient(
    make_context: MakeContext, local_server: Start
) -> None:
    def slow(request: Request, release: threading.Event) -> Response:
        release.wait(5)  # far longer than FORWARD_TIMEOUT=0.5
        return Response("{}", status=200)

    server = local_server(slow)
    handler = forwarder(make_context, server.url)
    assert handler.timeout == 0.5

    with pytest.raises(TransientError) as caught:
        handler(recording_event(), server.url)

    assert "timed out" in str(caught.value)


def test_a_targets_userinfo_becomes_basic_credentials(
    make_context: MakeContext, local_server: Start
) -> None:
    server = local_server(answering(204))
    url = server.url.replace("http://", "http://hook-user:hook%20pass@") + "/in?x=1"

    forwarder(make_context, url)(recording_event(), url)

    [seen] = server.seen
    assert (seen.path, seen.query) == ("/in", "x=1")
    expected = base64.b64encode(b"hook-user:hook pass").decode()
    assert seen.headers["Authorization"] == f"Basic {expected}"


def test_deliveries_to_one_target_share_a_connection(
    make_context: MakeContext, forward_target: ForwardTarget
) -> None:
    context = make_context(FORWARD_URLS=forward_target.url)
    handler = resolve("forward")(context)

    for _ in range(3):
        handler(recording_event(), forward_target.url)

    assert len(forward_target.deliveries) == 3
    pool = context.http.manager(forward_target.url).connection_from_url(forward_target.url)
    assert pool.num_connections == 1  # kept alive between the POSTs
