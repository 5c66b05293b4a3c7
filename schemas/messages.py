"""Payloads that cross the queue.

``EventMessageSchema``: what the web endpoint enqueues for each accepted callback: the raw
parameters as Twilio signed them, so the worker validates exactly what was received.
``HandlerEventSchema``: what each downstream handler task receives: the validated event and,
for recording events, the RoomRecording fetched from Twilio; for ``composition-available`` the
Composition; for ``room.recordings_ready`` (an internal event) the room's recordings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, post_load, validate

from schemas.callbacks import CallbackField, RoomEvent
from schemas.composition import Composition, CompositionSchema
from schemas.fields import iso8601
from schemas.internal import HandlerEventField
from schemas.recording import RoomRecording, RoomRecordingSchema

MESSAGE_VERSION = 1


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One accepted callback, as queued. ``id`` is stable for one event: every duplicate of a
    callback carries the same id."""

    id: str
    event: RoomEvent
    received_at: datetime
    idempotency_token: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": MESSAGE_VERSION,
            "id": self.id,
            "params": dict(self.event.raw),
            "received_at": iso8601(self.received_at),
            "idempotency_token": self.idempotency_token,
        }


@dataclass(frozen=True, slots=True)
class HandlerEvent:
    """What a handler receives: the callback and, for ``recording-*`` events, the RoomRecording
    fetched from Twilio (``None`` for other events)."""

    id: str
    event: RoomEvent
    recording: RoomRecording | None
    received_at: datetime
    # Only for room.recordings_ready: every recording of the room, final.
    recordings: tuple[RoomRecording, ...] | None = None
    # Only for composition-available: the Composition fetched from Twilio.
    composition: Composition | None = None

    @property
    def type(self) -> str:
        return self.event.type

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": MESSAGE_VERSION,
            "id": self.id,
            "params": dict(self.event.raw),
            "recording": None if self.recording is None else self.recording.raw,
            "received_at": iso8601(self.received_at),
        }
        if self.recordings is not None:  # absent otherwise: older workers read the message
            body["recordings"] = [recording.raw for recording in self.recordings]
        if self.composition is not None:
            body["composition"] = self.composition.raw
        return body


class _QueuedSchema(Schema):
    v = fields.Integer(required=True, validate=validate.Equal(MESSAGE_VERSION))
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    event = CallbackField(required=True, data_key="params")
    received_at = fields.AwareDateTime(required=True)


class EventMessageSchema(_QueuedSchema):
    idempotency_token = fields.String(allow_none=True, load_default=None)

    @post_load
    def _to_message(self, data: dict[str, Any], **_: Any) -> EventMessage:
        del data["v"]
        return EventMessage(**data)


class HandlerEventSchema(_QueuedSchema):
    event = HandlerEventField(required=True, data_key="params")
    recording = fields.Nested(RoomRecordingSchema, allow_none=True, load_default=None)
    recordings = fields.List(fields.Nested(RoomRecordingSchema), allow_none=True, load_default=None)
    composition = fields.Nested(CompositionSchema, allow_none=True, load_default=None)

    @post_load
    def _to_event(self, data: dict[str, Any], **_: Any) -> HandlerEvent:
        del data["v"]
        if data["recordings"] is not None:
            data["recordings"] = tuple(data["recordings"])
        return HandlerEvent(**data)
