"""The control API's own contract: validation, conflicts, raw listings."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.errors import ControlError

ROOM = "RM" + "6" * 32


def _status_of(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(ControlError) as caught:
        call(*args, **kwargs)
    return caught.value.status


def test_create_update_and_list_raw(control: Any) -> None:
    created = control.create_recording(
        room_sid=ROOM, sid="RT" + "a" * 32, date_created="2024-01-02T03:04:05.123456Z"
    )
    assert created["sid"] == "RT" + "a" * 32
    updated = control.update_recording(created["sid"], status="completed", size=99, duration=5)
    assert (updated["status"], updated["size"], updated["duration"]) == ("completed", 99, 5)
    raw = control.get_recording(created["sid"])
    assert raw["date_created"] == "2024-01-02T03:04:05.123456Z"
    assert raw["container_format"] == "mka" and raw["status"] == "completed"
    assert [r["sid"] for r in control.recordings()] == [created["sid"]]
    rooms = control.rooms()
    assert [(r["sid"], r["status"]) for r in rooms] == [(ROOM, "in-progress")]  # implied


def test_exist_ok_never_rolls_back(control: Any) -> None:
    sid = control.create_recording(room_sid=ROOM, status="completed", size=10)["sid"]
    again = control.create_recording(exist_ok=True, room_sid=ROOM, sid=sid, status="processing")
    assert (again["status"], again["size"]) == ("completed", 10)
    assert _status_of(control.create_recording, room_sid=ROOM, sid=sid) == 409


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"room_sid": "RM123"},
        {"room_sid": ROOM, "status": "done"},
        {"room_sid": ROOM, "size": -1},
        {"room_sid": ROOM, "codec": "mp3"},
        {"room_sid": ROOM, "date_created": "yesterday"},
        {"room_sid": ROOM, "colour": "blue"},
    ],
)
def test_invalid_recordings_are_rejected(control: Any, fields: dict[str, Any]) -> None:
    assert _status_of(control.create_recording, **fields) == 400


def test_update_errors(control: Any) -> None:
    assert _status_of(control.update_recording, "RT" + "0" * 32, status="completed") == 404
    sid = control.create_recording(room_sid=ROOM)["sid"]
    assert _status_of(control.update_recording, sid, room_sid="RM" + "7" * 32) == 400
    assert _status_of(control.update_recording, sid, status="nope") == 400
    assert control.get_recording(sid)["status"] == "processing"


def test_settings_validation(control: Any) -> None:
    assert _status_of(control.set_settings, max_concurrency=0) == 400
    assert _status_of(control.set_settings, latency_ms=-1) == 400
    assert _status_of(control.set_settings, throttle_retry_after=-1) == 400
    assert _status_of(control.set_settings, throttle_retry_after="2") == 400
    assert control.set_settings(latency_ms=5) == {
        "max_concurrency": None, "latency_ms": 5, "throttle_retry_after": None,
    }  # fmt: skip
