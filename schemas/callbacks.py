"""Schemas of Twilio Video room status callbacks, one per event family.

Each schema reads Twilio's form parameters (``RoomSid``, ``Timestamp`` ...) and loads them into
a :class:`RoomEvent` whose ``params`` are typed and snake_case. Parameters Twilio adds later are
accepted and kept (as strings, under their snake_case name), never rejected.

Only the parameters that identify an event are required (the account, room, event, time and
the participant, track or recording it is about). Every other documented parameter is typed and
checked when present but may be absent: captured payloads omit documented ones (a real
``recording-completed`` has no ``Type``), and Twilio never resends a callback that was refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from schemas.fields import CaseInsensitiveEnum, Sid, iso8601, snake_case

CODECS = ("VP8", "H264", "OPUS", "PCMU")
CONTAINERS = ("mka", "mkv")
TRACK_KINDS = ("audio", "video", "data")
FAILED_OPERATIONS = ("RecordingStart", "RecordingComplete", "RecordingUpload")

_non_negative = validate.Range(min=0)


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """One room status callback, validated. ``params`` holds every parameter received, typed,
    with snake_case names (``recording_sid``, ``timestamp`` as an aware datetime ...)."""

    event: str
    account_sid: str
    room_sid: str
    timestamp: datetime
    params: Mapping[str, Any] = field(repr=False)
    raw: Mapping[str, str] = field(repr=False, compare=False)

    @property
    def type(self) -> str:
        """The event's dotted name for downstream consumers: ``recording-completed`` ->
        ``recording.completed``."""
        return self.event.replace("-", ".", 1)

    @property
    def is_recording(self) -> bool:
        return self.event.startswith("recording-")

    @property
    def recording_sid(self) -> str | None:
        return self.params.get("recording_sid")

    @property
    def participant_sid(self) -> str | None:
        return self.params.get("participant_sid")

    def to_json(self) -> dict[str, Any]:
        """The parameters as JSON-ready values (datetimes in ISO 8601)."""
        return {
            key: iso8601(value) if isinstance(value, datetime) else value
            for key, value in self.params.items()
        }


class _CallbackSchema(Schema):
    """Parameters every callback carries."""

    class Meta:
        unknown = INCLUDE

    account_sid = Sid("AC", data_key="AccountSid", required=True)
    room_sid = Sid("RM", data_key="RoomSid", required=True)
    room_name = fields.String(data_key="RoomName")
    room_type = fields.String(data_key="RoomType")
    status_callback_event = fields.String(data_key="StatusCallbackEvent", required=True)
    timestamp = fields.AwareDateTime(data_key="Timestamp", required=True)
    room_status = fields.String(data_key="RoomStatus")
    sequence_number = fields.Integer(
        data_key="SequenceNumber", validate=_non_negative
    )  # not the true order: Timestamp is

    def _declared_keys(self) -> frozenset[str]:
        keys: frozenset[str] | None = self.__dict__.get("_declared")
        if keys is None:
            keys = frozenset(field.data_key or name for name, field in self.fields.items())
            self.__dict__["_declared"] = keys
        return keys

    @pre_load
    def _drop_shadowing(self, data: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        """An unknown parameter whose snake_case name is a declared field's (``timestamp``)
        must not replace the checked value; it stays in ``RoomEvent.raw`` only."""
        declared = self._declared_keys()
        return {
            key: value
            for key, value in data.items()
            if key in declared or snake_case(key) not in self.fields
        }

    @post_load(pass_original=True)
    def _to_event(self, data: dict[str, Any], original: Mapping[str, str], **_: Any) -> RoomEvent:
        params = {snake_case(key): value for key, value in data.items()}
        return RoomEvent(
            event=params["status_callback_event"],
            account_sid=params["account_sid"],
            room_sid=params["room_sid"],
            timestamp=params["timestamp"],
            params=params,
            raw=dict(original),
        )


class RoomCallbackSchema(_CallbackSchema):
    """``room-created``, and the parameters every room, participant and track event carries."""


class RoomEndedSchema(RoomCallbackSchema):
    room_duration = fields.Integer(data_key="RoomDuration", validate=_non_negative)


class ParticipantCallbackSchema(RoomCallbackSchema):
    participant_sid = Sid("PA", data_key="ParticipantSid", required=True)
    participant_status = fields.String(data_key="ParticipantStatus")
    participant_identity = fields.String(data_key="ParticipantIdentity")


class ParticipantDisconnectedSchema(ParticipantCallbackSchema):
    participant_duration = fields.Integer(data_key="ParticipantDuration", validate=_non_negative)


class TrackCallbackSchema(ParticipantCallbackSchema):
    track_sid = Sid("MT", data_key="TrackSid", required=True)
    track_kind = CaseInsensitiveEnum(TRACK_KINDS, data_key="TrackKind")


class RecordingCallbackSchema(_CallbackSchema):
    """``recording-started``; the completed and failed events add to it."""

    recording_sid = Sid("RT", data_key="RecordingSid", required=True)
    participant_sid = Sid("PA", data_key="ParticipantSid")
    participant_identity = fields.String(data_key="ParticipantIdentity")
    source_sid = Sid("MT", data_key="SourceSid")
    recording_uri = fields.String(data_key="RecordingUri")
    container = CaseInsensitiveEnum(CONTAINERS, data_key="Container")
    codec = CaseInsensitiveEnum(CODECS, data_key="Codec")
    track_name = fields.String(data_key="TrackName")
    offset_from_twilio_video_epoch = fields.Integer(
        data_key="OffsetFromTwilioVideoEpoch", validate=_non_negative
    )
    type = CaseInsensitiveEnum(TRACK_KINDS, data_key="Type")


class RecordingCompletedSchema(RecordingCallbackSchema):
    media_uri = fields.String(data_key="MediaUri")
    duration = fields.Integer(data_key="Duration", validate=_non_negative)
    size = fields.Integer(data_key="Size", validate=_non_negative)
    media_external_location = fields.String(data_key="MediaExternalLocation")


class RecordingFailedSchema(RecordingCallbackSchema):
    failed_operation = CaseInsensitiveEnum(FAILED_OPERATIONS, data_key="FailedOperation")


class CompositionCallbackSchema(_CallbackSchema):
    """``composition-enqueued``, ``-started`` and the parameters every composition event
    carries; ``HookSid`` only when a composition hook created it."""

    composition_sid = Sid("CJ", data_key="CompositionSid", required=True)
    composition_uri = fields.String(data_key="CompositionUri")
    hook_sid = Sid("HK", data_key="HookSid")


class CompositionProgressSchema(CompositionCallbackSchema):
    percentage_done = fields.Float(data_key="PercentageDone", validate=validate.Range(0, 100))
    seconds_remaining = fields.Float(data_key="SecondsRemaining", validate=_non_negative)


class CompositionAvailableSchema(CompositionCallbackSchema):
    media_uri = fields.String(data_key="MediaUri")
    duration = fields.Integer(data_key="Duration", validate=_non_negative)
    size = fields.Integer(data_key="Size", validate=_non_negative)


class CompositionFailedSchema(CompositionCallbackSchema):
    failed_operation = fields.String(data_key="FailedOperation")
    error_message = fields.String(data_key="ErrorMessage")


class CompositionHookFailedSchema(CompositionFailedSchema):
    """A hook that could not create its composition: the hook identifies the event."""

    composition_sid = Sid("CJ", data_key="CompositionSid")
    hook_sid = Sid("HK", data_key="HookSid", required=True)


CALLBACK_SCHEMAS: dict[str, type[_CallbackSchema]] = {
    "room-created": RoomCallbackSchema,
    "room-ended": RoomEndedSchema,
    "participant-connected": ParticipantCallbackSchema,
    "participant-disconnected": ParticipantDisconnectedSchema,
    "track-added": TrackCallbackSchema,
    "track-removed": TrackCallbackSchema,
    "track-enabled": TrackCallbackSchema,
    "track-disabled": TrackCallbackSchema,
    "recording-started": RecordingCallbackSchema,
    "recording-completed": RecordingCompletedSchema,
    "recording-failed": RecordingFailedSchema,
    "composition-enqueued": CompositionCallbackSchema,
    "composition-hook-failed": CompositionHookFailedSchema,
    "composition-started": CompositionCallbackSchema,
    "composition-progress": CompositionProgressSchema,
    "composition-available": CompositionAvailableSchema,
    "composition-failed": CompositionFailedSchema,
}
RECORDING_EVENTS = frozenset(name for name in CALLBACK_SCHEMAS if name.startswith("recording-"))
_SCHEMA_INSTANCES = {name: schema() for name, schema in CALLBACK_SCHEMAS.items()}


class UnknownEventError(ValidationError):
    """``StatusCallbackEvent`` is missing or names an event this service does not know."""


def load_callback(params: Mapping[str, str]) -> RoomEvent:
    """Validate one callback's parameters with the schema of its event.

    Raises :class:`UnknownEventError` when the event is missing or unknown, and
    ``marshmallow.ValidationError`` (``.messages`` keyed by Twilio parameter name) otherwise.
    """
    event = params.get("StatusCallbackEvent")
    schema = _SCHEMA_INSTANCES.get(event or "")
    if schema is None:
        known = ", ".join(CALLBACK_SCHEMAS)
        reason = (
            "Missing data for required field." if not event else f"Unknown event; one of: {known}."
        )
        raise UnknownEventError({"StatusCallbackEvent": [reason]})
    loaded: RoomEvent = schema.load(params)
    return loaded


class CallbackField(fields.Field):
    """A field holding one callback's raw parameters, loaded into a :class:`RoomEvent`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> RoomEvent:
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValidationError("Must be an object of string parameters.")
        return load_callback(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else dict(value.raw)
