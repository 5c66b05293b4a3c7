from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from marshmallow import ValidationError

from schemas import (
    EventMessage,
    EventMessageSchema,
    HandlerEvent,
    HandlerEventSchema,
    RoomRecordingSchema,
    load_callback,
)
from tests.support.twilio import recording_params, room_params, sid
from tests.unit.schemas.factories import CAPTURED_RECORDING_COMPLETED, resource_for, track_params

RECEIVED = datetime(2020, 8, 20, 1, 42, 6, 123456, tzinfo=UTC)


def event_message(params: dict[str, str] | None = None, **kwargs: Any) -> EventMessage:
    fields: dict[str, Any] = {
        "id": "evt_" + sid("XX")[2:],
        "event": load_callback(params or recording_params()),
        "received_at": RECEIVED,
    }
    return EventMessage(**(fields | kwargs))


def handler_event(
    params: dict[str, str] | None = None, *, with_recording: bool = True
) -> HandlerEvent:
    params = params or recording_params()
    recording = RoomRecordingSchema().load(resource_for(params)) if with_recording else None
    return HandlerEvent(
        id="evt_" + sid("XX")[2:], event=load_callback(params), recording=recording,
        received_at=RECEIVED,
    )  # fmt: skip


def through_json(body: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(body)  # raises unless JSON-serialisable
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def body_for(schema: Any) -> dict[str, Any]:
    """A valid queued body for ``schema``."""
    if isinstance(schema, HandlerEventSchema):
        return handler_event().to_json()
    return event_message(idempotency_token="tok-1").to_json()


def errors_of(schema: Any, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        schema.load(body)
    messages = caught.value.messages
    assert isinstance(messages, dict)
    return messages


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(event_message(), id="recording"),
        pytest.param(event_message(CAPTURED_RECORDING_COMPLETED), id="captured"),
        pytest.param(event_message(room_params()), id="room"),
        pytest.param(event_message(track_params(), idempotency_token="tok-1"), id="token"),
        pytest.param(
            event_message(
                received_at=datetime(2020, 8, 20, 3, 0, tzinfo=timezone(timedelta(hours=2)))
            ),
            id="offset-received-at",
        ),
    ],
)
def test_event_message_round_trips(message: EventMessage) -> None:
    loaded = EventMessageSchema().load(through_json(message.to_json()))

    assert loaded == message
    assert loaded.event.raw == message.event.raw
    assert loaded.idempotency_token == message.idempotency_token
    assert loaded.received_at == message.received_at


def test_event_message_carries_the_raw_params() -> None:
    message = event_message(CAPTURED_RECORDING_COMPLETED)

    body = message.to_json()

    assert body["params"] == CAPTURED_RECORDING_COMPLETED
    assert body["id"] == message.id
    assert body["received_at"] == "2020-08-20T01:42:06.123456Z"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(handler_event(), id="recording"),
        pytest.param(handler_event(with_recording=False), id="recording-not-fetched"),
        pytest.param(handler_event(room_params(), with_recording=False), id="room"),
    ],
)
def test_handler_event_round_trips(event: HandlerEvent) -> None:
    loaded = HandlerEventSchema().load(through_json(event.to_json()))

    assert loaded == event
    assert loaded.type == event.type
    if event.recording is None:
        assert loaded.recording is None
    else:
        assert loaded.recording is not None
        assert loaded.recording.raw == event.recording.raw


def test_handler_event_carries_the_raw_recording() -> None:
    event = handler_event()
    assert event.recording is not None

    body = event.to_json()

    assert body["recording"] == event.recording.raw
    assert body["params"] == dict(event.event.raw)


@pytest.mark.parametrize("schema", [EventMessageSchema(), HandlerEventSchema()])
@pytest.mark.parametrize("version", [0, 2, "one", None])
def test_other_versions_are_rejected(schema: Any, version: Any) -> None:
    body = body_for(schema) | {"v": version}

    assert "v" in errors_of(schema, body)


@pytest.mark.parametrize("schema", [EventMessageSchema(), HandlerEventSchema()])
def test_missing_version_is_rejected(schema: Any) -> None:
    body = body_for(schema)
    del body["v"]

    assert "v" in errors_of(schema, body)


@pytest.mark.parametrize("schema", [EventMessageSchema(), HandlerEventSchema()])
@pytest.mark.parametrize(
    ("params", "inner"),
    [
        (recording_params(RoomSid="RM123"), "RoomSid"),
        (recording_params(Size="big"), "Size"),
        (room_params(event="room-exploded"), "StatusCallbackEvent"),
    ],
)
def test_bad_params_are_reported_under_params(
    schema: Any, params: dict[str, str], inner: str
) -> None:
    body = body_for(schema) | {"params": params}

    messages = errors_of(schema, body)

    assert list(messages) == ["params"]
    assert inner in messages["params"]


@pytest.mark.parametrize("schema", [EventMessageSchema(), HandlerEventSchema()])
@pytest.mark.parametrize(
    "params",
    [None, "AccountSid=AC1", ["RoomSid"], {"Size": 105956}, {"RoomSid": None}],
)
def test_params_must_be_an_object_of_strings(schema: Any, params: Any) -> None:
    body = body_for(schema) | {"params": params}

    assert "params" in errors_of(schema, body)


@pytest.mark.parametrize(
    ("change", "inner"),
    [({"sid": "RT123"}, "sid"), ({"status": "done"}, "status"), ({"size": "1"}, "size")],
)
def test_bad_recording_is_reported_under_recording(change: dict[str, Any], inner: str) -> None:
    body = handler_event().to_json()
    body["recording"] = body["recording"] | change

    messages = errors_of(HandlerEventSchema(), body)

    assert list(messages) == ["recording"]
    assert inner in messages["recording"]


@pytest.mark.parametrize("schema", [EventMessageSchema(), HandlerEventSchema()])
@pytest.mark.parametrize(
    ("name", "value"),
    [("id", ""), ("id", "x" * 201), ("id", None), ("received_at", "2020-08-20T01:42:06"),
     ("received_at", "soon")],
)  # fmt: skip
def test_bad_envelope_fields_are_rejected(schema: Any, name: str, value: Any) -> None:
    body = body_for(schema) | {name: value}

    assert name in errors_of(schema, body)
