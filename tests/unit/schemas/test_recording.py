from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from marshmallow import ValidationError

from schemas import FINAL_STATUSES, RoomRecording, RoomRecordingSchema
from tests.support.twilio import ACCOUNT_SID, sid
from tests.unit.schemas.factories import recording_resource

NULLABLE = [
    "account_sid", "room_sid", "source_sid", "type", "codec", "container_format", "date_created",
    "duration", "size", "offset", "track_name", "grouping_sids", "media_external_location",
    "url", "links",
]  # fmt: skip


def load(resource: dict[str, Any]) -> RoomRecording:
    loaded = RoomRecordingSchema().load(resource)
    assert isinstance(loaded, RoomRecording)
    return loaded


def errors_of(resource: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        RoomRecordingSchema().load(resource)
    messages = caught.value.messages
    assert isinstance(messages, dict)
    return messages


def test_a_full_room_level_resource_loads_typed() -> None:
    resource = recording_resource()

    recording = load(resource)

    assert recording.sid == resource["sid"]
    assert recording.status == "completed"
    assert recording.account_sid == ACCOUNT_SID
    assert recording.room_sid == resource["room_sid"]
    assert recording.source_sid == resource["source_sid"]
    assert recording.type == "video"
    assert recording.codec == "VP8"
    assert recording.container_format == "mkv"
    assert recording.date_created == datetime(2020, 8, 20, 1, 42, 5, tzinfo=UTC)
    assert recording.duration == 3
    assert recording.size == 105956
    assert recording.offset == 155137307765
    assert recording.track_name == resource["track_name"]
    assert recording.grouping_sids == resource["grouping_sids"]
    assert recording.media_external_location is None
    assert recording.url == resource["url"]
    assert recording.links == resource["links"]
    assert recording.raw == resource


def test_raw_is_json_serialisable_and_equals_the_input_after_a_round_trip() -> None:
    resource = recording_resource()

    recording = load(json.loads(json.dumps(resource)))

    assert json.loads(json.dumps(recording.raw)) == resource


def test_unknown_keys_are_accepted_and_kept_in_raw() -> None:
    resource = recording_resource(
        status_callback="https://example.com/cb", status_callback_method="POST",
        brand_new={"nested": [1, 2]},
    )  # fmt: skip

    recording = load(resource)

    assert recording.raw["status_callback"] == "https://example.com/cb"
    assert recording.raw["brand_new"] == {"nested": [1, 2]}
    assert recording.sid == resource["sid"]


def test_external_location_is_loaded() -> None:
    location = "https://my-bucket.s3.amazonaws.com/recordings/RT.mkv"

    assert load(recording_resource(media_external_location=location)).media_external_location == (
        location
    )


def test_every_field_but_sid_and_status_may_be_null() -> None:
    resource = recording_resource() | dict.fromkeys(NULLABLE)

    recording = load(resource)

    for name in NULLABLE:
        assert getattr(recording, name) is None, name
    assert recording.media_url is None
    assert recording.participant_sid is None


def test_every_field_but_sid_and_status_may_be_absent() -> None:
    resource = {"sid": sid("RT"), "status": "processing"}

    recording = load(resource)

    assert all(getattr(recording, name) is None for name in NULLABLE)
    assert recording.raw == resource


@pytest.mark.parametrize("name", ["sid", "status"])
def test_sid_and_status_are_required_and_not_nullable(name: str) -> None:
    missing = recording_resource()
    del missing[name]

    assert name in errors_of(missing)
    assert name in errors_of(recording_resource(**{name: None}))


def test_account_level_resource_takes_room_sid_from_grouping_sids() -> None:
    resource = recording_resource(status_callback=None, status_callback_method="POST")
    room_sid = resource.pop("room_sid")

    recording = load(resource)

    assert recording.room_sid == room_sid
    assert "room_sid" not in recording.raw


def test_room_sid_from_grouping_sids_is_validated() -> None:
    # room_sid is a validated RM SID whether it comes from the resource or from grouping_sids.
    resource = recording_resource(grouping_sids={"room_sid": "not-a-room", "participant_sid": None})
    del resource["room_sid"]

    try:
        recording = load(resource)
    except ValidationError:
        return
    assert recording.room_sid is None or recording.room_sid.startswith("RM")
    assert recording.room_sid != "not-a-room"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "done"),
        ("status", ""),
        ("type", "screen"),
        ("codec", "vp9"),
        ("container_format", "mp4"),
        ("sid", sid("RM")),
        ("sid", "RT123"),
        ("sid", "RT" + "z" * 32),
        ("room_sid", sid("RT")),
        ("account_sid", "AC" + "0" * 31),
        ("date_created", "2020-08-20T01:42:05"),
        ("date_created", "yesterday"),
        ("duration", -0.5),
        ("grouping_sids", "RM123"),
        ("media_external_location", "not a url"),
        ("media_external_location", "/relative/RT.mka"),
        ("media_external_location", "https://bucket:port/RT.mka"),
        ("media_external_location", "https://[::1/RT.mka"),
        ("media_external_location", 5),
    ],
)
def test_bad_values_are_rejected_by_field(name: str, value: Any) -> None:
    assert name in errors_of(recording_resource() | {name: value})


@pytest.mark.parametrize("name", ["size", "duration", "offset"])
@pytest.mark.parametrize("value", ["123", 123.0, 1.5, True])
def test_integers_are_strict_in_json(name: str, value: Any) -> None:
    assert name in errors_of(recording_resource(**{name: value}))


@pytest.mark.parametrize(
    ("name", "sent", "expected"),
    [("codec", "OPUS", "OPUS"), ("codec", "h264", "H264"), ("container_format", "MKA", "mka"),
     ("status", "Completed", "completed"), ("type", "AUDIO", "audio")],
)  # fmt: skip
def test_enums_are_case_insensitive(name: str, sent: str, expected: str) -> None:
    assert getattr(load(recording_resource(**{name: sent})), name) == expected


def test_several_bad_fields_are_reported_together() -> None:
    messages = errors_of(recording_resource(status="done", size="1", codec="vp9"))

    assert set(messages) == {"status", "size", "codec"}


@pytest.mark.parametrize("status", ["completed", "deleted", "failed"])
def test_final_statuses(status: str) -> None:
    assert load(recording_resource(status=status)).is_final
    assert status in FINAL_STATUSES


def test_processing_is_not_final() -> None:
    assert not load(recording_resource(status="processing")).is_final


def test_media_url_and_participant_sid() -> None:
    participant = sid("PA")
    resource = recording_resource()
    resource["grouping_sids"] = {"room_sid": resource["room_sid"], "participant_sid": participant}

    recording = load(resource)

    assert recording.media_url == resource["links"]["media"]
    assert recording.participant_sid == participant


def test_recordings_of_equal_resources_are_equal() -> None:
    resource = recording_resource()

    assert load(resource) == load(json.loads(json.dumps(resource)))
    assert load(resource) != load(recording_resource())


# --- fields roomrec does not act on are kept as Twilio sent them -------------------------------

EXTERNAL_LOCATIONS = [
    "https://my_bucket.s3.amazonaws.com/recordings/RT.mka",  # legacy bucket name
    "https://bucket.s3.amazonaws.com/rooms/my room/RT 1.mka",  # a space in the key
    "https://my_bucket.s3.us-east-1.amazonaws.com/a%20b/RT.mkv",
    "s3://my_bucket/recordings/RT.mka",
]
ODD_INFORMATIONAL = [
    ("url", "not a url"),
    ("url", "https://video.twilio.com/v1/Rooms/RM x/Recordings/RT"),
    ("url", 5),
    ("links", {"media": 5}),
    ("links", {"media": "https://my_bucket.example/a b", "extra": {"nested": [1]}}),
    ("links", ["https://video.twilio.com"]),
]


@pytest.mark.parametrize("location", EXTERNAL_LOCATIONS)
def test_an_external_location_twilio_writes_is_accepted_verbatim(location: str) -> None:
    resource = recording_resource(media_external_location=location)

    recording = load(resource)

    assert recording.media_external_location == location
    assert recording.raw == resource


@pytest.mark.parametrize(("name", "value"), ODD_INFORMATIONAL)
def test_odd_url_and_links_never_make_a_resource_invalid(name: str, value: Any) -> None:
    resource = recording_resource(**{name: value})

    recording = load(resource)

    assert recording.raw[name] == value  # as Twilio sent it
    assert recording.raw == resource
    attribute = getattr(recording, name)
    assert attribute == value or attribute is None  # only when of the documented type


def test_media_url_is_only_a_string() -> None:
    assert load(recording_resource(links={"media": 5})).media_url is None
    assert load(recording_resource(links=["x"])).media_url is None
