"""The Composition REST resource (``GET /v1/Compositions/{CompositionSid}``): one media file
Twilio composes from a room's recordings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import INCLUDE, Schema, fields, post_load

from schemas.fields import CaseInsensitiveEnum, Sid
from schemas.recording import AbsoluteUrl, informational

COMPOSITION_STATUSES = ("enqueued", "processing", "completed", "deleted", "failed")
COMPOSITION_FINAL_STATUSES = frozenset({"completed", "deleted", "failed"})
COMPOSITION_FORMATS = ("mp4", "webm")


@dataclass(frozen=True, slots=True)
class Composition:
    """A Composition as Twilio describes it; ``raw`` is the JSON Twilio returned, validated.
    Every field but ``sid`` and ``status`` may be null, as in Twilio's spec."""

    sid: str
    status: str
    account_sid: str | None
    room_sid: str | None
    format: str | None
    size: int | None
    duration: int | None
    date_created: datetime | None
    date_completed: datetime | None
    status_callback: str | None
    media_external_location: str | None
    url: str | None
    links: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def media_url(self) -> str | None:
        """``links["media"]``, as Twilio sent it (informational: never requested)."""
        media = (self.links or {}).get("media")
        return media if isinstance(media, str) else None

    @property
    def is_final(self) -> bool:
        return self.status in COMPOSITION_FINAL_STATUSES


class CompositionSchema(Schema):
    """Validates the resource JSON; fields Twilio adds later are accepted and kept in ``raw``."""

    class Meta:
        unknown = INCLUDE

    sid = Sid("CJ", required=True)
    status = CaseInsensitiveEnum(COMPOSITION_STATUSES, required=True)
    account_sid = Sid("AC", allow_none=True, load_default=None)
    room_sid = Sid("RM", allow_none=True, load_default=None)
    format = CaseInsensitiveEnum(COMPOSITION_FORMATS, allow_none=True, load_default=None)
    size = fields.Integer(strict=True, allow_none=True, load_default=None)
    duration = fields.Integer(strict=True, allow_none=True, load_default=None)
    date_created = fields.AwareDateTime(allow_none=True, load_default=None)
    date_completed = fields.AwareDateTime(allow_none=True, load_default=None)
    status_callback = fields.String(allow_none=True, load_default=None)
    # As in RoomRecordingSchema: kept as Twilio sent them; the media is fetched by SID.
    media_external_location = AbsoluteUrl(allow_none=True, load_default=None)
    url = fields.Raw(allow_none=True, load_default=None)  # informational: any JSON
    links = fields.Raw(allow_none=True, load_default=None)

    @post_load(pass_original=True)
    def _to_composition(
        self, data: dict[str, Any], original: dict[str, Any], **_: Any
    ) -> Composition:
        known: dict[str, Any] = {name: data.get(name) for name in Composition.__dataclass_fields__}
        known.update(informational(known))
        known["raw"] = dict(original)
        return Composition(**known)
