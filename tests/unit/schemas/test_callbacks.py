from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from schemas import CALLBACK_SCHEMAS, RECORDING_EVENTS, RoomEvent, UnknownEventError, load_callback
from tests.support.twilio import recording_params, room_params, sid
from tests.unit.schemas.factories import (
    CAPTURED_RECORDING_COMPLETED,
    COMPOSITION_EVENTS,
    PARTICIPANT_EVENTS,
    RECORDING_EVENT_NAMES,
    ROOM_EVENTS,
    TRACK_EVENTS,
    callback_params,
    participant_params,
    track_params,
)

Factory = Callable[[], dict[str, str]]
ALL_EVENTS = (
    ROOM_EVENTS + PARTICIPANT_EVENTS + TRACK_EVENTS + RECORDING_EVENT_NAMES + COMPOSITION_EVENTS
)


def errors_of(params: dict[str, str]) -> dict[str, object]:
    with pytest.raises(ValidationError) as caught:
        load_callback(params)
    messages = caught.value.messages
    assert isinstance(messages, dict)
    return messages


def test_every_documented_event_has_a_schema() -> None:
    assert set(CALLBACK_SCHEMAS) == set(ALL_EVENTS)
    assert set(RECORDING_EVENTS) == set(RECORDING_EVENT_NAMES)


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_every_event_loads_a_realistic_payload(event: str) -> None:
    params = callback_params(event)

    loaded = load_callback(params)

    assert isinstance(loaded, RoomEvent)
    assert loaded.event == event
    assert loaded.account_sid == params["AccountSid"]
    assert loaded.room_sid == params["RoomSid"]
    assert loaded.timestamp.tzinfo is not None
    assert loaded.is_recording == event.startswith("recording-")
    assert loaded.raw == params
    assert set(loaded.params) >= {
        "account_sid",
        "room_sid",
        "status_callback_event",
        "timestamp",
    }


@pytest.mark.parametrize("event", PARTICIPANT_EVENTS + TRACK_EVENTS + RECORDING_EVENT_NAMES)
def test_participant_sid_is_exposed(event: str) -> None:
    params = callback_params(event)

    assert load_callback(params).participant_sid == params["ParticipantSid"]


@pytest.mark.parametrize("event", RECORDING_EVENT_NAMES)
def test_recording_events_expose_the_recording_sid(event: str) -> None:
    params = recording_params(event)

    assert load_callback(params).recording_sid == params["RecordingSid"]


@pytest.mark.parametrize("event", ROOM_EVENTS + PARTICIPANT_EVENTS + TRACK_EVENTS)
def test_other_events_have_no_recording_sid(event: str) -> None:
    assert load_callback(callback_params(event)).recording_sid is None


def test_event_specific_parameters_are_typed() -> None:
    ended = load_callback(callback_params("room-ended", RoomDuration="1800"))
    left = load_callback(participant_params("participant-disconnected", ParticipantDuration="42"))
    track = load_callback(track_params("track-added", TrackKind="audio"))
    failed = load_callback(recording_params("recording-failed", FailedOperation="RecordingStart"))

    assert ended.params["room_duration"] == 1800
    assert left.params["participant_duration"] == 42
    assert track.params["track_kind"] == "audio"
    assert track.params["track_sid"] == track.raw["TrackSid"]
    assert failed.params["failed_operation"] == "RecordingStart"


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ("room-created", "AccountSid"),
        ("room-created", "RoomSid"),
        ("room-created", "Timestamp"),
        ("participant-connected", "ParticipantSid"),
        ("participant-disconnected", "ParticipantSid"),
        ("track-added", "TrackSid"),
        ("track-disabled", "ParticipantSid"),
        ("recording-started", "RecordingSid"),
        ("recording-completed", "RecordingSid"),
        ("recording-failed", "RoomSid"),
    ],
)
def test_identifying_parameters_are_required(event: str, name: str) -> None:
    params = callback_params(event)
    del params[name]

    assert name in errors_of(params)


def test_captured_recording_completed_without_type_loads() -> None:
    assert "Type" not in CAPTURED_RECORDING_COMPLETED

    loaded = load_callback(CAPTURED_RECORDING_COMPLETED)

    assert loaded.event == "recording-completed"
    assert loaded.recording_sid == "RT2c3f5a84328cb488376b45c221f27998"
    assert loaded.room_sid == "RM5b9970c25fb6f31a7da94fe683be0957"
    assert loaded.params["source_sid"] == "MT863e43b23ad81723cc410f548045c6e3"
    assert loaded.params["size"] == 105956
    assert loaded.params["duration"] == 3
    assert loaded.params["offset_from_twilio_video_epoch"] == 155137307765
    assert loaded.params["media_uri"] == CAPTURED_RECORDING_COMPLETED["MediaUri"]
    assert "type" not in loaded.params


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("vp8", "VP8"), ("VP8", "VP8"), ("h264", "H264"), ("OPUS", "OPUS"), ("Opus", "OPUS"),
     ("opus", "OPUS"), ("pcmu", "PCMU")],
)  # fmt: skip
def test_codec_is_case_insensitive_and_normalised(sent: str, expected: str) -> None:
    assert load_callback(recording_params(Codec=sent)).params["codec"] == expected


@pytest.mark.parametrize(("sent", "expected"), [("MKV", "mkv"), ("mkv", "mkv"), ("Mka", "mka")])
def test_container_is_case_insensitive_and_normalised(sent: str, expected: str) -> None:
    assert load_callback(recording_params(Container=sent)).params["container"] == expected


@pytest.mark.parametrize(("sent", "expected"), [("VIDEO", "video"), ("Audio", "audio"),
                                                ("data", "data")])  # fmt: skip
def test_track_kind_is_case_insensitive(sent: str, expected: str) -> None:
    assert load_callback(track_params(TrackKind=sent)).params["track_kind"] == expected


@pytest.mark.parametrize(("sent", "expected"), [("AUDIO", "audio"), ("Video", "video")])
def test_recording_type_is_case_insensitive(sent: str, expected: str) -> None:
    assert load_callback(recording_params(Type=sent)).params["type"] == expected


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("recordingupload", "RecordingUpload"), ("RECORDINGSTART", "RecordingStart"),
     ("RecordingComplete", "RecordingComplete")],
)  # fmt: skip
def test_failed_operation_is_case_insensitive(sent: str, expected: str) -> None:
    params = recording_params("recording-failed", FailedOperation=sent)

    assert load_callback(params).params["failed_operation"] == expected


@pytest.mark.parametrize(
    ("factory", "name", "value"),
    [
        (recording_params, "Codec", "vp9"),
        (recording_params, "Container", "mp4"),
        (recording_params, "Type", "screen"),
        (track_params, "TrackKind", "screen"),
        (lambda: recording_params("recording-failed"), "FailedOperation", "RecordingExplode"),
    ],
)
def test_values_outside_an_enum_are_rejected(factory: Factory, name: str, value: str) -> None:
    params = factory()
    params[name] = value

    assert name in errors_of(params)


def test_timestamp_with_microseconds_and_z_is_aware_utc() -> None:
    loaded = load_callback(room_params(Timestamp="2020-08-20T01:42:05.839174Z"))

    assert loaded.timestamp == datetime(2020, 8, 20, 1, 42, 5, 839174, tzinfo=UTC)
    assert loaded.timestamp.utcoffset() == timedelta(0)


def test_timestamp_with_an_offset_is_the_same_instant() -> None:
    loaded = load_callback(room_params(Timestamp="2020-08-20T03:42:05.839174+02:00"))

    assert loaded.timestamp == datetime(2020, 8, 20, 1, 42, 5, 839174, tzinfo=UTC)
    assert loaded.to_json()["timestamp"] == "2020-08-20T01:42:05.839174Z"


@pytest.mark.parametrize(
    "value", ["2020-08-20T01:42:05.839174", "2020-08-20 01:42:05", "yesterday", "1597887725", ""]
)
def test_naive_or_malformed_timestamps_are_rejected(value: str) -> None:
    assert "Timestamp" in errors_of(room_params(Timestamp=value))


@pytest.mark.parametrize(
    ("name", "snake", "value"),
    [
        ("Size", "size", "105956"),
        ("Duration", "duration", "3"),
        ("Duration", "duration", "0"),
        ("OffsetFromTwilioVideoEpoch", "offset_from_twilio_video_epoch", "155137307765"),
        ("SequenceNumber", "sequence_number", "7"),
    ],
)
def test_integers_are_parsed(name: str, snake: str, value: str) -> None:
    loaded = load_callback(recording_params(**{name: value}))

    assert loaded.params[snake] == int(value)
    assert isinstance(loaded.params[snake], int)


@pytest.mark.parametrize(
    "name", ["Size", "Duration", "OffsetFromTwilioVideoEpoch", "SequenceNumber"]
)
@pytest.mark.parametrize("value", ["3.5", "abc", "1e3", "", "0x10"])
def test_non_integers_are_rejected_by_twilio_name(name: str, value: str) -> None:
    assert name in errors_of(recording_params(**{name: value}))


@pytest.mark.parametrize(
    "name", ["Size", "Duration", "OffsetFromTwilioVideoEpoch", "SequenceNumber"]
)
def test_negative_integers_are_rejected_by_twilio_name(name: str) -> None:
    assert name in errors_of(recording_params(**{name: "-1"}))


@pytest.mark.parametrize(
    ("factory", "name"),
    [
        (lambda: participant_params("participant-disconnected"), "ParticipantDuration"),
        (lambda: callback_params("room-ended"), "RoomDuration"),
    ],
)
def test_negative_durations_are_rejected(factory: Factory, name: str) -> None:
    params = factory()
    params[name] = "-5"

    assert name in errors_of(params)


@pytest.mark.parametrize(
    ("factory", "name", "prefix"),
    [
        (room_params, "AccountSid", "AC"),
        (room_params, "RoomSid", "RM"),
        (participant_params, "ParticipantSid", "PA"),
        (track_params, "TrackSid", "MT"),
        (recording_params, "RecordingSid", "RT"),
        (recording_params, "SourceSid", "MT"),
        (recording_params, "ParticipantSid", "PA"),
    ],
)
@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(
            lambda good, prefix: ("RT" if prefix != "RT" else "RM") + good[2:], id="prefix"
        ),
        pytest.param(lambda good, prefix: prefix.lower() + good[2:], id="lowercase-prefix"),
        pytest.param(lambda good, prefix: good[:-1], id="short"),
        pytest.param(lambda good, prefix: good + "0", id="long"),
        pytest.param(lambda good, prefix: good[:-1] + "g", id="non-hex"),
        pytest.param(lambda good, prefix: good[:-2] + " 1", id="space"),
    ],
)
def test_bad_sids_are_rejected_by_twilio_name(
    factory: Factory, name: str, prefix: str, mangle: Callable[[str, str], str]
) -> None:
    params = factory()
    params[name] = mangle(params[name], prefix)

    assert name in errors_of(params)


def test_an_rt_where_an_rm_is_expected_is_rejected() -> None:
    messages = errors_of(room_params(RoomSid=sid("RT")))

    assert list(messages) == ["RoomSid"]


def test_unknown_parameters_are_kept_snake_cased_and_raw() -> None:
    params = recording_params(NewThing="surprise", AnotherNewParam="42")

    loaded = load_callback(params)

    assert loaded.params["new_thing"] == "surprise"
    assert loaded.params["another_new_param"] == "42"
    assert loaded.raw["NewThing"] == "surprise"
    assert loaded.raw == params


@pytest.mark.parametrize(
    ("name", "typed_name", "value"),
    [
        ("roomSid", "room_sid", "not-a-sid"),
        ("timestamp", "timestamp", "yesterday"),
        ("status_callback_event", "status_callback_event", "room-exploded"),
        ("Account_Sid", "account_sid", "AC-not-a-sid"),
        ("recordingSid", "recording_sid", "RT-forged"),
    ],
)
def test_unknown_parameters_never_replace_validated_ones(
    name: str, typed_name: str, value: str
) -> None:
    # An extra parameter whose snake_case name equals a known one must not overwrite the
    # validated, typed value (it is still kept in ``raw`` for the signature check).
    params = recording_params()
    expected = load_callback(params).params[typed_name]
    params[name] = value

    try:
        loaded = load_callback(params)
    except ValidationError:
        return  # rejecting the ambiguous payload is fine too
    assert loaded.params[typed_name] == expected
    assert loaded.raw[name] == value


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({k: v for k, v in room_params().items() if k != "StatusCallbackEvent"},
                     id="missing"),
        pytest.param(room_params(event=""), id="empty"),
        pytest.param(room_params(event="room-exploded"), id="unknown"),
        pytest.param(room_params(event="Room-Created"), id="wrong-case"),
        pytest.param({}, id="nothing"),
    ],
)  # fmt: skip
def test_missing_or_unknown_event_is_an_unknown_event_error(params: dict[str, str]) -> None:
    with pytest.raises(UnknownEventError) as caught:
        load_callback(params)

    assert isinstance(caught.value, ValidationError)
    assert list(caught.value.messages) == ["StatusCallbackEvent"]


def test_errors_of_several_fields_are_reported_together() -> None:
    params = recording_params(RoomSid="RM123", Size="big", Timestamp="noon", Codec="vp9")
    del params["RecordingSid"]

    messages = errors_of(params)

    assert set(messages) == {"RoomSid", "Size", "Timestamp", "Codec", "RecordingSid"}


@pytest.mark.parametrize(
    ("event", "dotted"),
    [
        ("recording-completed", "recording.completed"),
        ("recording-started", "recording.started"),
        ("participant-connected", "participant.connected"),
        ("participant-disconnected", "participant.disconnected"),
        ("track-added", "track.added"),
        ("room-ended", "room.ended"),
    ],
)
def test_type_is_dotted(event: str, dotted: str) -> None:
    assert load_callback(callback_params(event)).type == dotted


@pytest.mark.parametrize("event", ALL_EVENTS)
def test_to_json_is_serialisable_with_iso_z_timestamps(event: str) -> None:
    moment = datetime(2021, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    params = callback_params(event, Timestamp=moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    loaded = load_callback(params)

    as_json = loaded.to_json()

    assert json.loads(json.dumps(as_json)) == as_json
    assert as_json["timestamp"] == "2021-03-04T05:06:07.891011Z"
    assert datetime.fromisoformat(as_json["timestamp"]) == moment
    assert as_json["room_sid"] == params["RoomSid"]


def test_to_json_keeps_integers_as_numbers() -> None:
    as_json = load_callback(CAPTURED_RECORDING_COMPLETED).to_json()

    assert as_json["size"] == 105956
    assert as_json["offset_from_twilio_video_epoch"] == 155137307765
    assert as_json["codec"] == "VP8"


def test_events_loaded_from_equal_params_are_equal() -> None:
    params = recording_params()

    assert load_callback(params) == load_callback(dict(params))
    assert load_callback(params) != load_callback(recording_params())


# --- property: load_callback never raises anything but ValidationError ----------------------

TWILIO_NAMES = sorted(
    {name for event in ALL_EVENTS for name in callback_params(event)}
    | {"Type", "MediaExternalLocation", "RoomDuration", "FailedOperation"}
)
_BASES = [callback_params(event) for event in ALL_EVENTS]
_keys = st.one_of(st.sampled_from(TWILIO_NAMES), st.text(max_size=12))
_values = st.one_of(
    st.sampled_from(
        ["", "-1", "0", "3", "1e3", "vp8", "MKV", "room-created", "recording-completed",
         "2020-08-20T01:42:05.839174Z", "2020-08-20T01:42:05", "9" * 5000, sid("RT"), sid("RM"),
         sid("PA"), sid("MT"), "\x00", "ſ"]
    ),
    st.text(max_size=40),
)  # fmt: skip


@st.composite
def _payloads(draw: st.DrawFn) -> dict[str, str]:
    if draw(st.booleans()):
        return draw(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=12))
    params = dict(draw(st.sampled_from(_BASES)))
    for name in draw(st.sets(st.sampled_from(TWILIO_NAMES), max_size=4)):
        params.pop(name, None)
    params.update(draw(st.dictionaries(_keys, _values, max_size=6)))
    return params


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_payloads())
def test_load_callback_returns_an_event_or_raises_validation_error(params: dict[str, str]) -> None:
    try:
        loaded = load_callback(params)
    except ValidationError:
        return
    assert isinstance(loaded, RoomEvent)


_COLLIDING = ["roomSid", "timestamp", "status_callback_event", "accountSid", "Room_Sid"]


@st.composite
def _realistic_payloads(draw: st.DrawFn) -> dict[str, str]:
    params = dict(draw(st.sampled_from(_BASES)))
    keys = st.one_of(st.sampled_from(TWILIO_NAMES + _COLLIDING), st.text(max_size=12))
    extra = draw(st.dictionaries(keys, _values, max_size=4))
    for name in ("AccountSid", "RoomSid", "StatusCallbackEvent", "Timestamp"):
        extra.pop(name, None)  # keep the identity of the event; everything else may vary
    return params | extra


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_realistic_payloads())
def test_a_loaded_event_is_the_event_twilio_sent(params: dict[str, str]) -> None:
    try:
        loaded = load_callback(params)
    except ValidationError:
        return
    assert loaded.event == params["StatusCallbackEvent"]
    assert loaded.account_sid == params["AccountSid"]
    assert loaded.room_sid == params["RoomSid"]
    assert isinstance(loaded.timestamp, datetime)
    assert loaded.raw == params
    json.dumps(loaded.to_json())
