"""From the bytes Twilio sent to a validated :class:`RoomEvent`. Pure functions, no Flask.

werkzeug's own form parser is not used: it turns a body that is not UTF-8 into an empty form
and keeps a bad percent-escape such as ``%FF`` as the literal text ``%FF``. Here both are an
:class:`InvalidEncoding` naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, unquote, unquote_plus

from marshmallow import ValidationError

from schemas import RoomEvent, UnknownEventError, load_callback
from schemas.fields import messages_by_name
from webhooks.errors import (
    BadRequestParams,
    InvalidEncoding,
    ParamNameTooLong,
    RepeatedParams,
    TooManyParams,
    UnknownEvent,
)

_NOT_UTF8 = "Not valid UTF-8."
# Twilio sends fewer than 40 parameters, none with a long name: more is a flood, refused before
# the signature is computed over it.
MAX_PARAMS = 100
MAX_NAME_LENGTH = 256
_SHOWN_NAME = 40  # how much of a too-long name the problem document repeats


def decode_query(raw: bytes) -> str:
    """The raw query string as text; it is part of the signed URL."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEncoding(
            "The query string is not valid UTF-8.", errors={"query string": [_NOT_UTF8]}
        ) from None


def parse_params(raw: bytes, *, source: str = "body") -> list[tuple[str, str]]:
    """Every (name, value) pair of a form-encoded ``raw``, in order, repeats kept; at most
    :data:`MAX_PARAMS` of them (:class:`TooManyParams`), each name at most
    :data:`MAX_NAME_LENGTH` characters (:class:`ParamNameTooLong`)."""
    _check_count(raw, source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEncoding(
            f"The {source} is not valid UTF-8.", errors={source: [_NOT_UTF8]}
        ) from None
    try:
        return _checked_names(_pairs(text), source)
    except UnicodeDecodeError:
        pass  # a percent-escape that is not UTF-8: find which parameter, to name it
    pairs: list[tuple[str, str]] = []
    bad: dict[str, list[str]] = {}
    for chunk in text.split("&"):
        try:
            pairs.extend(parse_qsl(chunk, keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError:
            name = unquote_plus(chunk.partition("=")[0], errors="replace")
            bad[name] = [_NOT_UTF8]
    _checked_names(pairs, source)
    if bad:
        raise InvalidEncoding(f"Parameters not valid UTF-8: {', '.join(sorted(bad))}.", errors=bad)
    return pairs


def _check_count(raw: bytes, source: str) -> None:
    """Refuse more than :data:`MAX_PARAMS` parameters, counted on the bytes before any decoding
    (an empty ``&&`` chunk is no parameter)."""
    if raw.count(b"&") < MAX_PARAMS:  # the common case, at C speed
        return
    count = sum(1 for chunk in raw.split(b"&") if chunk)
    if count > MAX_PARAMS:
        raise TooManyParams(
            f"The {source} has {count} parameters; a callback has at most {MAX_PARAMS}.",
            errors={source: [f"More than {MAX_PARAMS} parameters."]},
        )


def _checked_names(pairs: list[tuple[str, str]], source: str) -> list[tuple[str, str]]:
    long = [name for name, _ in pairs if len(name) > MAX_NAME_LENGTH]
    if long:
        shown = {name[:_SHOWN_NAME] + "…": [f"Longer than {MAX_NAME_LENGTH} characters."]
                 for name in long}  # fmt: skip
        raise ParamNameTooLong(
            f"A parameter name in the {source} is longer than {MAX_NAME_LENGTH} characters.",
            errors=shown,
        )
    return pairs


def _pairs(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True, errors="strict")``, at half its cost: only a
    name or value holding ``+`` or ``%`` goes through ``unquote`` (most of a callback's do not)."""
    pairs = []
    for chunk in text.split("&"):
        if chunk:
            name, _, value = chunk.partition("=")
            pairs.append((_unquoted(name), _unquoted(value)))
    return pairs


def _unquoted(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text, errors="strict") if "%" in text else text


def single_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``pairs`` as a dict; a parameter repeated with different values is refused, since which
    one Twilio meant cannot be known (the same value repeated is harmless)."""
    params: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    for name, value in pairs:
        if params.setdefault(name, value) != value:
            repeated[name] = ["Sent more than once with different values."]
    if repeated:
        raise RepeatedParams(
            f"Parameters repeated with different values: {', '.join(sorted(repeated))}.",
            errors=repeated,
        )
    return params


def load_event(params: Mapping[str, str]) -> RoomEvent:
    """Validate ``params`` with the schema of their event; errors are keyed by parameter."""
    try:
        return load_callback(params)
    except UnknownEventError as exc:
        raise UnknownEvent(
            "StatusCallbackEvent is missing or names an event this service does not know.",
            errors=messages_by_name(exc),
        ) from None
    except ValidationError as exc:
        errors = messages_by_name(exc)
        raise BadRequestParams(
            f"Invalid parameters: {', '.join(sorted(errors))}.", errors=errors
        ) from None
