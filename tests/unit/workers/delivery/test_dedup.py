"""workers.delivery.dedup.event_id: one id per event, stable across resends."""

from __future__ import annotations

import pytest

from tests.support.twilio import recording_params, room_params, sid
from tests.unit.schemas.factories import callback_params, participant_params, track_params
from workers.delivery.dedup import event_id


@pytest.mark.parametrize(
    "params",
    [room_params(), participant_params(), track_params(), recording_params(),
     recording_params("recording-failed")],
)  # fmt: skip
def test_stable_for_identical_params(params: dict[str, str]) -> None:
    assert event_id(params) == event_id(dict(params))


@pytest.mark.parametrize("params", [room_params(), recording_params()])
def test_independent_of_dict_order(params: dict[str, str]) -> None:
    reordered = dict(reversed(list(params.items())))
    assert list(reordered) != list(params)

    assert event_id(reordered) == event_id(params)


def test_an_id_is_a_short_opaque_string() -> None:
    value = event_id(recording_params())

    assert value.startswith("evt_")
    assert len(value) <= 200  # the queued-message schema's limit
    assert value.isascii() and value.replace("_", "").isalnum()


@pytest.mark.parametrize("event", ["recording-started", "recording-completed", "recording-failed"])
def test_a_resent_recording_event_keeps_its_id(event: str) -> None:
    first = recording_params(event, Timestamp="2020-08-20T01:42:05.839174Z")
    resent = first | {"Timestamp": "2020-08-20T01:42:35.000001Z", "SequenceNumber": "5"}

    assert event_id(resent) == event_id(first)


def test_recording_events_of_one_recording_differ_by_event() -> None:
    recording = sid("RT")
    ids = {
        event_id(recording_params(event, RecordingSid=recording))
        for event in ("recording-started", "recording-completed", "recording-failed")
    }

    assert len(ids) == 3


def test_recording_events_of_different_recordings_differ() -> None:
    first = recording_params()
    other = first | {"RecordingSid": sid("RT")}

    assert event_id(other) != event_id(first)


@pytest.mark.parametrize("event", ["room-created", "participant-connected", "track-added"])
def test_different_events_differ(event: str) -> None:
    params = callback_params(event)
    other_event = "room-ended" if event != "room-ended" else "room-created"

    assert event_id(params | {"StatusCallbackEvent": other_event}) != event_id(params)


@pytest.mark.parametrize(
    "params",
    [room_params(), participant_params("participant-disconnected"), track_params("track-enabled")],
)
def test_other_events_differ_when_any_param_differs(params: dict[str, str]) -> None:
    base = event_id(params)

    for name in params:
        assert event_id(params | {name: params[name] + "0"}) != base, name
    assert event_id(params | {"NewThing": "1"}) != base
    without = dict(params)
    del without["RoomName"]
    assert event_id(without) != base


def test_other_events_differ_even_when_values_contain_separators() -> None:
    # Two different callbacks (one has an extra parameter, the other a room name containing
    # a newline) must not share an id, or the second would be dropped as a duplicate.
    base = room_params(RoomName="standup")
    first = base | {"RoomName": "standup\nRoomNameZ=1"}
    second = base | {"RoomNameZ": "1"}
    assert first != second

    assert event_id(first) != event_id(second)


def test_a_non_recording_event_with_a_recording_sid_uses_all_params() -> None:
    params = track_params(RecordingSid=sid("RT"), Timestamp="2020-08-20T01:42:05.839174Z")

    assert event_id(params | {"Timestamp": "2020-08-20T01:42:35.000001Z"}) != event_id(params)


def test_a_recording_event_without_a_recording_sid_uses_all_params() -> None:
    params = recording_params(Timestamp="2020-08-20T01:42:05.839174Z")
    del params["RecordingSid"]

    assert event_id(params | {"Timestamp": "2020-08-20T01:42:35.000001Z"}) != event_id(params)
