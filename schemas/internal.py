"""Events roomrec makes itself and hands to handlers like a callback, never accepted from
outside.

``room-recordings_ready`` (dotted type ``room.recordings_ready``): a room has ended and every one
of its recordings has reached a final status. These schemas are deliberately kept out of
:data:`schemas.callbacks.CALLBACK_SCHEMAS`, which is what the web endpoint (and the worker, for
queued callbacks) validates with: a request naming an internal event is refused there as an
unknown event. Only :class:`HandlerEventField` (the event inside a queued handler task) knows
them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate

from schemas.callbacks import CallbackField, RoomCallbackSchema, RoomEvent, load_callback

ROOM_RECORDINGS_READY = "room-recordings_ready"


class RoomRecordingsReadySchema(RoomCallbackSchema):
    """``AccountSid``, ``RoomSid``, ``Timestamp`` (when the room became ready),
    ``RecordingCount`` and, when known, ``RoomName``. The recordings travel beside the event
    (``HandlerEvent.recordings``)."""

    recording_count = fields.Integer(data_key="RecordingCount", validate=validate.Range(min=0))


INTERNAL_SCHEMAS = {ROOM_RECORDINGS_READY: RoomRecordingsReadySchema}
_INSTANCES = {name: schema() for name, schema in INTERNAL_SCHEMAS.items()}


def load_internal(params: Mapping[str, str]) -> RoomEvent:
    """Validate the parameters of an internal event, or of a callback (anything else)."""
    schema = _INSTANCES.get(params.get("StatusCallbackEvent") or "")
    if schema is None:
        return load_callback(params)
    loaded: RoomEvent = schema.load(params)
    return loaded


class HandlerEventField(CallbackField):
    """The event of a handler task: a callback or one of the internal events."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> RoomEvent:
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValidationError("Must be an object of string parameters.")
        return load_internal(value)
