"""Field types shared by the Twilio schemas (SIDs, case-insensitive enums, absolute URLs), and
what the schemas' users share: snake_case names, ISO 8601 times, a ValidationError's messages
by name."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields

_SID_BODY = re.compile(r"[0-9a-fA-F]{32}")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


class Sid(fields.String):
    """A Twilio SID: a two-letter prefix and 32 hex digits, e.g. ``RT`` for a recording."""

    def __init__(self, prefix: str, **kwargs: Any) -> None:
        if len(prefix) != 2 or not prefix.isalpha():
            raise ValueError(f"a SID prefix is two letters, not {prefix!r}")
        super().__init__(**kwargs)
        self.prefix = prefix

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) != 34 or not _SID_BODY.fullmatch(text[2:]):
            raise ValidationError(f"Not a valid {self.prefix} SID: two letters and 32 hex digits.")
        if text[:2] != self.prefix:
            raise ValidationError(f"Not a valid {self.prefix} SID: it starts with {text[:2]!r}.")
        return text


class CaseInsensitiveEnum(fields.String):
    """A string from a fixed set, matched case-insensitively and normalised to its canonical
    spelling (Twilio sends ``vp8`` where its own spec says ``VP8``)."""

    def __init__(self, choices: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = tuple(choices)
        self._canonical = {choice.casefold(): choice for choice in self.choices}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self._canonical[text.casefold()]
        except KeyError:
            raise ValidationError(f"Must be one of: {', '.join(self.choices)}.") from None


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


@functools.lru_cache(maxsize=1024)
def snake_case(name: str) -> str:
    """``RecordingSid`` -> ``recording_sid``; ``OffsetFromTwilioVideoEpoch`` ->
    ``offset_from_twilio_video_epoch``; names already in snake_case are kept."""
    return _CAMEL_BOUNDARY.sub("_", name).replace("-", "_").lower()


def snake_keys(params: Mapping[str, Any]) -> dict[str, Any]:
    return {snake_case(key): value for key, value in params.items()}


def iso8601(moment: datetime) -> str:
    """An aware datetime in ISO 8601 UTC as Twilio writes it: ``2020-08-20T01:42:05.839174Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def messages_by_name(error: ValidationError) -> dict[str, list[str]]:
    """What ``error`` says of each name it names (a parameter, a variable, a filter; ``_schema``
    for the payload as a whole), its nested messages flattened in order."""
    return {str(name): _flatten(value) for name, value in error.normalized_messages().items()}


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, Mapping):
        return [m for value in messages.values() for m in _flatten(value)]
    return [m for value in messages for m in _flatten(value)]
