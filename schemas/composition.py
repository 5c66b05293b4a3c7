"""The Composition REST resource (``GET /v1/Compositions/{CompositionSid}``): one media file
Twilio composes from a room's recordings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marshmallow import fields

from schemas.fields import CaseInsensitiveEnum, Sid
from schemas.resource import MediaResource, MediaResourceSchema

COMPOSITION_STATUSES = ("enqueued", "processing", "completed", "deleted", "failed")
COMPOSITION_FINAL_STATUSES = frozenset({"completed", "deleted", "failed"})
COMPOSITION_FORMATS = ("mp4", "webm")


@dataclass(frozen=True, slots=True)
class Composition(MediaResource):
    """A Composition as Twilio describes it: a media resource of one ``format``, complete at
    ``date_completed``, whose progress Twilio reports to ``status_callback``."""

    final_statuses = COMPOSITION_FINAL_STATUSES

    format: str | None
    size: int | None
    duration: int | None
    date_created: datetime | None
    date_completed: datetime | None
    status_callback: str | None


class CompositionSchema(MediaResourceSchema):
    """Validates the resource JSON."""

    resource = Composition

    sid = Sid("CJ", required=True)
    status = CaseInsensitiveEnum(COMPOSITION_STATUSES, required=True)
    format = CaseInsensitiveEnum(COMPOSITION_FORMATS, allow_none=True, load_default=None)
    size = fields.Integer(strict=True, allow_none=True, load_default=None)
    duration = fields.Integer(strict=True, allow_none=True, load_default=None)
    date_created = fields.AwareDateTime(allow_none=True, load_default=None)
    date_completed = fields.AwareDateTime(allow_none=True, load_default=None)
    status_callback = fields.String(allow_none=True, load_default=None)
