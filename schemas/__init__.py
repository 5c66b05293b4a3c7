"""marshmallow schemas for every payload that crosses a boundary of roomrec: Twilio's room
status callbacks, the RoomRecording REST resource, the messages on the queue and the
service's configuration. Imports nothing else of the project."""

from schemas.callbacks import (
    CALLBACK_SCHEMAS,
    RECORDING_EVENTS,
    RoomEvent,
    UnknownEventError,
    load_callback,
)
from schemas.messages import EventMessage, EventMessageSchema, HandlerEvent, HandlerEventSchema
from schemas.recording import FINAL_STATUSES, RoomRecording, RoomRecordingSchema

__all__ = [
    "CALLBACK_SCHEMAS",
    "FINAL_STATUSES",
    "RECORDING_EVENTS",
    "EventMessage",
    "EventMessageSchema",
    "HandlerEvent",
    "HandlerEventSchema",
    "RoomEvent",
    "RoomRecording",
    "RoomRecordingSchema",
    "UnknownEventError",
    "load_callback",
]
