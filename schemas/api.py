"""The read API's payloads: the filters of ``GET /recordings`` and every answer's shape.

Datetimes are written as Twilio writes them (ISO 8601, UTC, ``Z``). A page's ``next`` is an
opaque cursor: base64url of where the page ended, checked when it comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from schemas.callbacks import TRACK_KINDS
from schemas.fields import CaseInsensitiveEnum, Sid, iso8601
from schemas.recording import RECORDING_STATUSES

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last recording's ``date_created`` and ``sid``."""

    date_created: datetime
    sid: str

    def encode(self) -> str:
        text = json.dumps([iso8601(self.date_created), self.sid], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class UtcDateTime(fields.Field):
    """Dumps an aware datetime as ``2020-08-20T01:42:05.839174Z``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso8601(value)


class DateOrDateTime(fields.Field):
    """``2024-05-01`` (midnight UTC) or an ISO 8601 datetime (UTC when it has no offset)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("Must be an ISO 8601 date or datetime.")
        text = value.strip()
        try:
            if len(text) == 10:
                return datetime.combine(date.fromisoformat(text), time(), UTC)
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError("Must be an ISO 8601 date or datetime.") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class CursorField(fields.Field):
    """The ``cursor`` of a page's ``next`` link, loaded as a :class:`Cursor`."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Cursor:
        if not isinstance(value, str):
            raise ValidationError("Not a cursor this API gave out.")
        text = value
        try:
            decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            moment, sid = decoded
            cursor = Cursor(datetime.fromisoformat(moment.replace("Z", "+00:00")), sid)
        except (binascii.Error, ValueError, TypeError, AttributeError):
            raise ValidationError("Not a cursor this API gave out.") from None
        if cursor.date_created.tzinfo is None or not isinstance(cursor.sid, str):
            raise ValidationError("Not a cursor this API gave out.")
        return cursor


class RecordingFiltersSchema(Schema):
    """The query string of ``GET /recordings``; an unknown parameter is an error."""

    class Meta:
        unknown = RAISE

    room = Sid("RM", load_default=None)
    status = CaseInsensitiveEnum(RECORDING_STATUSES, load_default=None)
    type = CaseInsensitiveEnum(TRACK_KINDS, load_default=None)
    date_created_after = DateOrDateTime(load_default=None)
    date_created_before = DateOrDateTime(load_default=None)
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = CursorField(load_default=None)

    @validates_schema
    def _check_dates(self, data: dict[str, Any], **_: Any) -> None:
        after, before = data.get("date_created_after"), data.get("date_created_before")
        if after and before and after >= before:
            raise ValidationError("Must be later than date_created_after.", "date_created_before")


class OutcomeSchema(Schema):
    handler = fields.String()
    target = fields.String(allow_none=True)
    status = fields.String()
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    at = fields.String()


class EventSchema(Schema):
    id = fields.String()
    type = fields.String()
    timestamp = UtcDateTime()
    participant_sid = fields.String(allow_none=True)
    received_at = UtcDateTime()
    params = fields.Dict()
    outcomes = fields.List(fields.Nested(OutcomeSchema))


class RoomSchema(Schema):
    sid = fields.String()
    account_sid = fields.String()
    name = fields.String(allow_none=True)
    type = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    created_at = UtcDateTime(allow_none=True)
    ended_at = UtcDateTime(allow_none=True)
    duration = fields.Integer(allow_none=True)
    last_event_at = UtcDateTime()


class RecordingSchema(Schema):
    """One recording as listed: the stored columns, not the whole resource."""

    sid = fields.String()
    room_sid = fields.String()
    account_sid = fields.String(allow_none=True)
    status = fields.String()
    type = fields.String(allow_none=True)
    codec = fields.String(allow_none=True)
    container_format = fields.String(allow_none=True)
    track_name = fields.String(allow_none=True)
    participant_sid = fields.String(allow_none=True)
    source_sid = fields.String(allow_none=True)
    duration = fields.Integer(allow_none=True)
    size = fields.Integer(allow_none=True)
    offset = fields.Integer(allow_none=True)
    date_created = UtcDateTime()
    media_external_location = fields.String(allow_none=True)
    last_event_at = UtcDateTime()


class RecordingPageSchema(Schema):
    recordings = fields.List(fields.Nested(RecordingSchema))
    next = fields.String(allow_none=True)


class RecordingDetailSchema(RecordingSchema):
    """``GET /recordings/{sid}``: the recording, the RoomRecording JSON as Twilio returned it
    (``resource``), its room, its events by Timestamp with each handler's outcome, and where
    the ``archive`` handler put its media (null until it has)."""

    resource = fields.Dict(attribute="raw", allow_none=True)
    room = fields.Nested(RoomSchema)
    events = fields.List(fields.Nested(EventSchema))
    archive = fields.Dict(allow_none=True)
