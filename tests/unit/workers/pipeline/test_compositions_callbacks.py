"""The composition status callbacks: what the emulator sends is what the schemas accept, and
the schemas check what identifies an event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError

from emulator.model.composition_flow import callback_params
from emulator.model.compositions import Composition
from schemas import CALLBACK_SCHEMAS, load_callback
from tests.support.twilio import ACCOUNT_SID, sid

EVENTS = ("composition-enqueued", "composition-started", "composition-progress",
          "composition-available", "composition-failed")  # fmt: skip


def params_for(event: str, **extra: str) -> dict[str, str]:
    composition = Composition(sid=sid("CJ"), room_sid=sid("RM"), status="completed",
                              date_created=datetime.now(UTC), size=1234, duration=56)  # fmt: skip
    params = callback_params(composition, event, ACCOUNT_SID)
    if event == "composition-progress":
        params |= {"PercentageDone": "50", "SecondsRemaining": "12"}
    if event == "composition-failed":
        params |= {"FailedOperation": "Composition", "ErrorMessage": "No media"}
    return params | extra


def test_every_composition_event_is_a_callback() -> None:
    assert set(EVENTS) | {"composition-hook-failed"} <= set(CALLBACK_SCHEMAS)


@pytest.mark.parametrize("event", EVENTS)
def test_what_the_emulator_sends_loads(event: str) -> None:
    params = params_for(event, HookSid=sid("HK"))

    loaded = load_callback(params)

    assert loaded.type == event.replace("-", ".", 1)
    assert loaded.params["composition_sid"] == params["CompositionSid"]
    assert loaded.params["hook_sid"] == params["HookSid"]
    assert loaded.room_sid == params["RoomSid"] and loaded.recording_sid is None
    assert not loaded.is_recording


def test_typed_parameters() -> None:
    available = load_callback(params_for("composition-available")).params
    progress = load_callback(params_for("composition-progress")).params

    assert (available["size"], available["duration"]) == (1234, 56)
    assert (progress["percentage_done"], progress["seconds_remaining"]) == (50.0, 12.0)


@pytest.mark.parametrize(
    ("event", "name", "value"),
    [("composition-started", "CompositionSid", "RT" + "1" * 32),
     ("composition-started", "HookSid", "CJ" + "1" * 32),
     ("composition-progress", "PercentageDone", "101"),
     ("composition-available", "Size", "-1"),
     ("composition-available", "Duration", "long")],
)  # fmt: skip
def test_bad_values_are_named(event: str, name: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_callback(params_for(event, **{name: value}))
    assert name in caught.value.messages  # type: ignore[operator]


def test_the_composition_sid_is_required_but_for_a_failed_hook() -> None:
    params = params_for("composition-started")
    del params["CompositionSid"]
    with pytest.raises(ValidationError) as caught:
        load_callback(params)
    assert "CompositionSid" in caught.value.messages  # type: ignore[operator]

    hook = params | {"StatusCallbackEvent": "composition-hook-failed"}
    with pytest.raises(ValidationError) as caught:
        load_callback(hook)
    assert "HookSid" in caught.value.messages  # type: ignore[operator]
    loaded = load_callback(hook | {"HookSid": sid("HK"), "ErrorMessage": "bad layout"})
    assert loaded.params["error_message"] == "bad layout"
