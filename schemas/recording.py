"""The RoomRecording REST resource (``GET /v1/Rooms/{RoomSid}/Recordings/{RecordingSid}``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields

from schemas.callbacks import CODECS, CONTAINERS, TRACK_KINDS
from schemas.fields import CaseInsensitiveEnum, Sid
from schemas.resource import MediaResource, MediaResourceSchema

RECORDING_STATUSES = ("processing", "completed", "deleted", "failed")
FINAL_STATUSES = frozenset({"completed", "deleted", "failed"})


@dataclass(frozen=True, slots=True)
class RoomRecording(MediaResource):
    """A RoomRecording as Twilio describes it: a media resource holding one track (``source_sid``,
    ``track_name``) of one participant (``grouping_sids``)."""

    final_statuses = FINAL_STATUSES

    source_sid: str | None
    type: str | None
    codec: str | None
    container_format: str | None
    date_created: datetime | None
    duration: int | None
    size: int | None
    offset: int | None
    track_name: str | None
    grouping_sids: dict[str, Any] | None

    @property
    def participant_sid(self) -> str | None:
        return (self.grouping_sids or {}).get("participant_sid")


class RoomRecordingSchema(MediaResourceSchema):
    """Validates the resource JSON. The account-level resource (``/v1/Recordings/{RT}``) has
    no ``room_sid``: it is then taken from ``grouping_sids``."""

    resource = RoomRecording

    sid = Sid("RT", required=True)
    status = CaseInsensitiveEnum(RECORDING_STATUSES, required=True)
    source_sid = fields.String(allow_none=True, load_default=None)
    type = CaseInsensitiveEnum(TRACK_KINDS, allow_none=True, load_default=None)
    codec = CaseInsensitiveEnum(CODECS, allow_none=True, load_default=None)
    container_format = CaseInsensitiveEnum(CONTAINERS, allow_none=True, load_default=None)
    date_created = fields.AwareDateTime(allow_none=True, load_default=None)
    duration = fields.Integer(strict=True, allow_none=True, load_default=None)
    size = fields.Integer(strict=True, allow_none=True, load_default=None)
    offset = fields.Integer(strict=True, allow_none=True, load_default=None)
    track_name = fields.String(allow_none=True, load_default=None)
    grouping_sids = fields.Dict(keys=fields.String(), allow_none=True, load_default=None)

    def _complete(self, known: dict[str, Any]) -> None:
        if known["room_sid"] is None and known["grouping_sids"]:
            grouped = known["grouping_sids"].get("room_sid")
            if grouped is not None:
                try:
                    known["room_sid"] = self.fields["room_sid"].deserialize(grouped)
                except ValidationError as exc:
                    raise ValidationError({"room_sid": exc.messages}, "grouping_sids") from exc
