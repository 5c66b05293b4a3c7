"""The RoomRecording REST resource (``GET /v1/Rooms/{RoomSid}/Recordings/{RecordingSid}``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_load

from schemas.callbacks import CODECS, CONTAINERS, TRACK_KINDS
from schemas.fields import CaseInsensitiveEnum, Sid

RECORDING_STATUSES = ("processing", "completed", "deleted", "failed")
FINAL_STATUSES = frozenset({"completed", "deleted", "failed"})


@dataclass(frozen=True, slots=True)
class RoomRecording:
    """A RoomRecording as Twilio describes it. Every field but ``sid`` and ``status`` may be
    null, as in Twilio's spec; ``raw`` is the JSON Twilio returned, validated."""

    sid: str
    status: str
    account_sid: str | None
    room_sid: str | None
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
    media_external_location: str | None
    url: str | None
    links: dict[str, str] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def participant_sid(self) -> str | None:
        return (self.grouping_sids or {}).get("participant_sid")

    @property
    def media_url(self) -> str | None:
        return (self.links or {}).get("media")

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class RoomRecordingSchema(Schema):
    """Validates the resource JSON. Fields Twilio adds later are accepted and kept in ``raw``.
    The account-level resource (``/v1/Recordings/{RT}``) has no ``room_sid``: it is then taken
    from ``grouping_sids``."""

    class Meta:
        unknown = INCLUDE

    sid = Sid("RT", required=True)
    status = CaseInsensitiveEnum(RECORDING_STATUSES, required=True)
    account_sid = Sid("AC", allow_none=True, load_default=None)
    room_sid = Sid("RM", allow_none=True, load_default=None)
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
    media_external_location = fields.Url(require_tld=False, allow_none=True, load_default=None)
    url = fields.Url(require_tld=False, allow_none=True, load_default=None)
    links = fields.Dict(
        keys=fields.String(), values=fields.String(), allow_none=True, load_default=None
    )

    @post_load(pass_original=True)
    def _to_recording(
        self, data: dict[str, Any], original: dict[str, Any], **_: Any
    ) -> RoomRecording:
        known: dict[str, Any] = {
            name: data.get(name) for name in RoomRecording.__dataclass_fields__
        }
        if known["room_sid"] is None and known["grouping_sids"]:
            grouped = known["grouping_sids"].get("room_sid")
            if grouped is not None:
                try:
                    known["room_sid"] = self.fields["room_sid"].deserialize(grouped)
                except ValidationError as exc:
                    raise ValidationError({"room_sid": exc.messages}, "grouping_sids") from exc
        known["raw"] = dict(original)
        return RoomRecording(**known)
