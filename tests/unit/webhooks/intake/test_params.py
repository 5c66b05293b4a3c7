"""Parsing and validating the parameters, without Flask."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.twilio import recording_params, room_params
from webhooks.errors import (
    BadRequestParams,
    InvalidEncoding,
    ParamNameTooLong,
    RepeatedParams,
    TooManyParams,
    UnknownEvent,
)
from webhooks.intake.params import (
    MAX_NAME_LENGTH,
    MAX_PARAMS,
    decode_query,
    load_event,
    parse_params,
    single_valued,
)


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        (b"", []),
        (b"a=1&b=2", [("a", "1"), ("b", "2")]),
        (b"a=1&a=2", [("a", "1"), ("a", "2")]),
        (b"a=&b", [("a", ""), ("b", "")]),
        (b"a=x+y%20z&&c=%C3%A9", [("a", "x y z"), ("c", "é")]),
        (b"a=1;b=2", [("a", "1;b=2")]),  # only & separates, as Twilio and werkzeug have it
        (b"a=100%", [("a", "100%")]),  # a stray % is text
    ],
)
def test_parse_params(raw: bytes, pairs: list[tuple[str, str]]) -> None:
    assert parse_params(raw) == pairs


# Forms built from the characters that matter to the parser, and escapes valid or not.
form_texts = st.lists(
    st.sampled_from(["a", "B", "=", "&", "+", ";", "%", "%2", "%41", "%2B", "%C3%A9", "%C3", "%FF",
                     "\u00e9", " "])
    | st.text(max_size=4).map(quote),
    max_size=24,
).map("".join)  # fmt: skip


@given(text=form_texts)
def test_parse_params_reads_as_parse_qsl_does(text: str) -> None:
    try:
        expected = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        with pytest.raises(InvalidEncoding):
            parse_params(text.encode())
        return
    assert parse_params(text.encode()) == expected


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"RoomName=%FF&RoomSid=x", "RoomName"),
        (b"RoomSid=x&RoomName=caf%C3", "RoomName"),
        (b"Room%FFName=x", "Room\ufffdName"),
        (b"RoomName=\xff", "body"),
        (b"RoomName=\xed\xa0\x80", "body"),  # an encoded surrogate is not UTF-8 either
    ],
)
def test_invalid_utf8_names_the_parameter(raw: bytes, named: str) -> None:
    with pytest.raises(InvalidEncoding) as caught:
        parse_params(raw)
    assert list(caught.value.errors) == [named]


def test_decode_query() -> None:
    assert decode_query(b"a=%FF&b=1") == "a=%FF&b=1"  # escapes stay escaped: it is signed so
    with pytest.raises(InvalidEncoding):
        decode_query(b"a=\xff")


def test_single_valued_accepts_a_value_repeated_identically() -> None:
    assert single_valued([("a", "1"), ("b", "2"), ("a", "1")]) == {"a": "1", "b": "2"}


def test_single_valued_names_each_parameter_repeated_with_different_values() -> None:
    with pytest.raises(RepeatedParams) as caught:
        single_valued([("a", "1"), ("b", "2"), ("a", "3"), ("b", "2"), ("c", "1"), ("c", "")])
    assert sorted(caught.value.errors) == ["a", "c"]


def test_load_event_returns_the_event() -> None:
    params = recording_params()
    event = load_event(params)
    assert event.event == "recording-completed"
    assert event.recording_sid == params["RecordingSid"]


@pytest.mark.parametrize("event", [None, "", "room-exploded"])
def test_load_event_refuses_a_missing_or_unknown_event(event: str | None) -> None:
    params = room_params()
    if event is None:
        del params["StatusCallbackEvent"]
    else:
        params["StatusCallbackEvent"] = event
    with pytest.raises(UnknownEvent) as caught:
        load_event(params)
    assert list(caught.value.errors) == ["StatusCallbackEvent"]


def test_load_event_names_every_bad_field() -> None:
    params = recording_params(Size="-1", Timestamp="yesterday")
    del params["RoomSid"]
    with pytest.raises(BadRequestParams) as caught:
        load_event(params)
    assert type(caught.value) is BadRequestParams
    assert sorted(caught.value.errors) == ["RoomSid", "Size", "Timestamp"]
    assert all(caught.value.errors.values())


# --- limits, checked before the signature is computed ----------------------------------------


def _form(count: int, *, name_length: int = 4) -> bytes:
    return "&".join(f"{'n' * name_length}{i:04d}=v" for i in range(count)).encode()


@pytest.mark.parametrize("source", ["body", "query string"])
def test_a_hundred_parameters_are_read_one_more_is_refused(source: str) -> None:
    assert len(parse_params(_form(MAX_PARAMS), source=source)) == MAX_PARAMS
    assert len(parse_params(_form(MAX_PARAMS) + b"&&&&", source=source)) == MAX_PARAMS
    with pytest.raises(TooManyParams) as caught:
        parse_params(_form(MAX_PARAMS + 1), source=source)
    assert caught.value.slug == "too-many-parameters" and caught.value.status == 400
    assert list(caught.value.errors) == [source]


def test_a_flood_of_parameters_is_refused_even_when_not_utf8() -> None:
    with pytest.raises(TooManyParams):
        parse_params(b"\xff=1&" * 5000)


def test_a_name_of_256_characters_is_read_a_longer_one_refused() -> None:
    name = "N" * MAX_NAME_LENGTH
    assert parse_params(f"{name}=1".encode()) == [(name, "1")]
    with pytest.raises(ParamNameTooLong) as caught:
        parse_params(f"a=1&{name}X=2".encode())
    assert caught.value.slug == "parameter-name-too-long" and caught.value.status == 400
    [shown] = caught.value.errors
    assert len(shown) < 50  # the problem document does not echo the whole name


def test_a_long_percent_encoded_name_counts_its_characters() -> None:
    name = "é" * MAX_NAME_LENGTH  # 256 characters, 1536 bytes encoded
    assert parse_params(f"{quote(name)}=1".encode()) == [(name, "1")]
    with pytest.raises(ParamNameTooLong):
        parse_params(f"{quote(name + 'é')}=1&b=%FF".encode())
