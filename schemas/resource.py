"""What Twilio's two media resources share, the RoomRecording (:mod:`schemas.recording`) and
the Composition (:mod:`schemas.composition`): the fields both have, as a dataclass base, and
the schema base that validates them and loads a resource's JSON into its dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from marshmallow import INCLUDE, Schema, fields, post_load

from schemas.fields import AbsoluteUrl, Sid


@dataclass(frozen=True, slots=True)
class MediaResource:
    """A media resource as Twilio describes it; ``raw`` is the JSON Twilio returned, validated.
    Every field but ``sid`` and ``status`` may be null, as in Twilio's spec."""

    final_statuses: ClassVar[frozenset[str]]

    sid: str
    status: str
    account_sid: str | None
    room_sid: str | None
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
        return self.status in self.final_statuses


def _informational(known: dict[str, Any]) -> dict[str, Any]:
    """``url`` and ``links`` as attributes when they have the type Twilio documents, else None;
    whatever they were, ``raw`` keeps them as sent (and forwards, stores and archives them)."""
    url, links = known.get("url"), known.get("links")
    return {
        "url": url if isinstance(url, str) else None,
        "links": links if isinstance(links, dict) else None,
    }


class MediaResourceSchema(Schema):
    """Validates the resource JSON into a :attr:`resource`; fields Twilio adds later are
    accepted and kept in ``raw``. A subclass declares ``sid`` and ``status`` and its own
    fields."""

    resource: ClassVar[type[MediaResource]]

    class Meta:
        unknown = INCLUDE

    account_sid = Sid("AC", allow_none=True, load_default=None)
    room_sid = Sid("RM", allow_none=True, load_default=None)
    # Kept as Twilio sent them. marshmallow's Url refuses what Twilio does send: an S3 bucket
    # of a legacy name with an underscore (my_bucket.s3.amazonaws.com), a key with a space.
    # roomrec never requests either (the media is fetched by SID); the external location is
    # recorded (and logged, redacted) as where the media is, so it must at least be a URL.
    media_external_location = AbsoluteUrl(allow_none=True, load_default=None)
    url = fields.Raw(allow_none=True, load_default=None)  # informational: any JSON
    links = fields.Raw(allow_none=True, load_default=None)

    @post_load(pass_original=True)
    def _to_resource(
        self, data: dict[str, Any], original: dict[str, Any], **_: Any
    ) -> MediaResource:
        # dataclasses.fields, not __dataclass_fields__: that one names final_statuses too.
        known: dict[str, Any] = {
            item.name: data.get(item.name) for item in dataclasses.fields(self.resource)
        }
        self._complete(known)
        known.update(_informational(known))
        known["raw"] = dict(original)
        return self.resource(**known)

    def _complete(self, known: dict[str, Any]) -> None:
        """Fill in what the resource's own fields leave out (nothing, unless overridden)."""
