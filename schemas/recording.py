"""The RoomRecording REST resource (``GET /v1/Rooms/{RoomSid}/Recordings/{RecordingSid}``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

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
    links: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def participant_sid(self) -> str | None:
        return (self.grouping_sids or {}).get("participant_sid")

    @property
    def media_url(self) -> str | None:
        """``links["media"]``, as Twilio sent it (informational: never requested)."""
        media = (self.links or {}).get("media")
        return media if isinstance(media, str) else None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class AbsoluteUrl(fields.String):
    """A URL with a scheme and a host that :func:`urllib.parse.urlsplit` takes apart, kept
    verbatim: no check of the host's or path's characters beyond that."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError:
            raise ValidationError("Not a valid URL.") from None
        if not parts.scheme or not parts.hostname or any(c in text for c in "\r\n\t\0"):
            raise ValidationError("Not a valid URL: it needs a scheme and a host.")
        return text


def informational(known: dict[str, Any]) -> dict[str, Any]:
    """``url`` and ``links`` as attributes when they have the type Twilio documents, else None;
    whatever they were, ``raw`` keeps them as sent (and forwards, stores and archives them)."""
    url, links = known.get("url"), known.get("links")
    return {
        "url": url if isinstance(url, str) else None,
        "links": links if isinstance(links, dict) else None,
    }


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
    # Kept as Twilio sent them. marshmallow's Url refuses what Twilio does send: an S3 bucket
    # of a legacy name with an underscore (my_bucket.s3.amazonaws.com), a key with a space.
    # roomrec never requests either (the media is fetched by SID); the external location is
    # recorded (and logged, redacted) as where the media is, so it must at least be a URL.
    media_external_location = AbsoluteUrl(allow_none=True, load_default=None)
    url = fields.Raw(allow_none=True, load_default=None)  # informational: any JSON
    links = fields.Raw(allow_none=True, load_default=None)

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
        known.update(informational(known))
        known["raw"] = dict(original)
        return RoomRecording(**known)
