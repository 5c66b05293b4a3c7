"""Compositions in the emulator: ``POST /v1/Compositions`` checked as Twilio checks it, the
resource and list JSON against Twilio's spec, the progression and its signed status callbacks,
and the media behind a signed redirect."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests

from emulator.model.media import media_sha256
from tests.emulator.conftest import ACCOUNT_SID, CallbackReceiver
from tests.emulator.views.test_spec import _component, _errors, _list_page

GRID = json.dumps({"grid": {"video_sources": ["*"]}})


@pytest.fixture
def manual(control: Any) -> Any:
    """Compositions advanced by hand only."""
    control.set_composition_settings(auto_advance_ms=None)
    return control


def room_with_recordings(control: Any, *sizes: int, duration: int | None = 30) -> str:
    room = control.create_room(status="completed", duration=duration)["sid"]
    for size in sizes:
        control.create_recording(room_sid=room, status="completed", size=size, duration=9)
    return str(room)


def create(api: requests.Session, base_url: str, room: str, **params: Any) -> requests.Response:
    form = {"RoomSid": room, "AudioSources": "*", "VideoLayout": GRID, "Format": "mp4"} | params
    return api.post(f"{base_url}/v1/Compositions", data=form, timeout=5)


def wait_for_callbacks(receiver: CallbackReceiver, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, [c.params for c in receiver.received]
        time.sleep(0.02)


def events(receiver: CallbackReceiver) -> list[str]:
    return [c.params["StatusCallbackEvent"] for c in receiver.received]


def test_a_created_composition_is_enqueued_and_says_so(
    api: requests.Session, base_url: str, manual: Any, receiver: CallbackReceiver
) -> None:
    room = room_with_recordings(manual, 1000)

    answer = create(api, base_url, room, StatusCallback=receiver.url)

    assert answer.status_code == 201
    body = answer.json()
    assert body["sid"].startswith("CJ") and body["status"] == "enqueued"
    assert (body["room_sid"], body["account_sid"], body["format"]) == (room, ACCOUNT_SID, "mp4")
    assert body["audio_sources"] == ["*"] and body["video_layout"] == json.loads(GRID)
    assert body["status_callback"] == receiver.url and body["status_callback_method"] == "POST"
    assert body["links"]["media"] == f"{base_url}/v1/Compositions/{body['sid']}/Media"
    wait_for_callbacks(receiver, 1)
    [enqueued] = receiver.received
    assert enqueued.signature_valid and enqueued.method == "POST"
    assert enqueued.content_type == "application/x-www-form-urlencoded"
    assert enqueued.params == enqueued.params | {
        "StatusCallbackEvent": "composition-enqueued", "CompositionSid": body["sid"],
        "RoomSid": room, "AccountSid": ACCOUNT_SID,
        "CompositionUri": f"/v1/Compositions/{body['sid']}",
    }  # fmt: skip


def test_advancing_by_hand_sends_each_steps_callbacks_before_answering(
    api: requests.Session, base_url: str, manual: Any, receiver: CallbackReceiver
) -> None:
    room = room_with_recordings(manual, 40_000, 60_000)
    sid = create(api, base_url, room, StatusCallback=receiver.url).json()["sid"]

    processing = manual.advance_composition(sid)
    assert processing["status"] == "processing"
    assert events(receiver) == ["composition-enqueued", "composition-started",
                                "composition-progress"]  # fmt: skip
    completed = manual.advance_composition(sid)

    assert completed["status"] == "completed" and completed["date_completed"] is not None
    assert (completed["size"], completed["duration"]) == (50_000, 30)
    available = receiver.received[-1].params
    assert available["StatusCallbackEvent"] == "composition-available"
    assert (available["Size"], available["Duration"]) == ("50000", "30")
    assert available["MediaUri"] == f"/v1/Compositions/{sid}/Media"
    assert all(c.signature_valid for c in receiver.received)
    assert [c["status"] for c in completed["callbacks"]] == [204] * 4
    assert api.get(f"{base_url}/v1/Compositions/{sid}", timeout=5).json()["status"] == "completed"
    with pytest.raises(Exception, match="409"):
        manual.advance_composition(sid)


def test_compositions_progress_by_themselves(
    api: requests.Session, base_url: str, control: Any, receiver: CallbackReceiver
) -> None:
    control.set_composition_settings(auto_advance_ms=10)
    sid = create(api, base_url, room_with_recordings(control, 5000),
                 StatusCallback=receiver.url).json()["sid"]  # fmt: skip

    wait_for_callbacks(receiver, 4)

    assert events(receiver) == ["composition-enqueued", "composition-started",
                                "composition-progress", "composition-available"]  # fmt: skip
    assert control.get_composition(sid)["status"] == "completed"


def test_a_room_without_completed_recordings_fails_to_compose(
    api: requests.Session, base_url: str, manual: Any, receiver: CallbackReceiver
) -> None:
    room = manual.create_room()["sid"]
    manual.create_recording(room_sid=room, status="failed")
    sid = create(api, base_url, room, StatusCallback=receiver.url).json()["sid"]

    failed = manual.advance_composition(sid, to="completed")

    assert failed["status"] == "failed"
    last = receiver.received[-1].params
    assert last["StatusCallbackEvent"] == "composition-failed"
    assert last["FailedOperation"] and "no completed recording" in last["ErrorMessage"]
    media = api.get(f"{base_url}/v1/Compositions/{sid}/Media", timeout=5, allow_redirects=False)
    assert media.status_code == 404


def test_failing_on_demand_and_get_callbacks(
    api: requests.Session, base_url: str, manual: Any, receiver: CallbackReceiver
) -> None:
    room = room_with_recordings(manual, 1000)
    sid = create(api, base_url, room, StatusCallback=receiver.url,
                 StatusCallbackMethod="GET").json()["sid"]  # fmt: skip

    manual.advance_composition(sid, to="failed", error_message="Invalid layout")

    assert events(receiver) == ["composition-enqueued", "composition-failed"]
    assert all(c.method == "GET" and c.signature_valid for c in receiver.received)
    assert receiver.received[-1].params["ErrorMessage"] == "Invalid layout"


def test_media_is_a_signed_redirect_to_deterministic_bytes(
    api: requests.Session, base_url: str, manual: Any
) -> None:
    sid = create(api, base_url, room_with_recordings(manual, 300_000)).json()["sid"]
    early = api.get(f"{base_url}/v1/Compositions/{sid}/Media", timeout=5, allow_redirects=False)
    assert early.status_code == 404  # not before it completes
    manual.advance_composition(sid, to="completed")

    redirect = api.get(f"{base_url}/v1/Compositions/{sid}/Media", timeout=5,
                       allow_redirects=False)  # fmt: skip

    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert redirect.json() == {"redirect_to": location}
    whole = requests.get(location, timeout=5)  # no Twilio auth: the URL is signed
    assert whole.headers["Content-Type"] == "video/mp4"
    assert hashlib.sha256(whole.content).hexdigest() == media_sha256(sid, 150_000)
    part = requests.get(location, headers={"Range": "bytes=100-199"}, timeout=5)
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert requests.get(location.replace("Signature=", "Signature=0"), timeout=5).status_code == 403


@pytest.mark.parametrize(
    "change",
    [{"RoomSid": None}, {"RoomSid": "RM123"}, {"RoomSid": "RM" + "9" * 32},
     {"AudioSources": None, "VideoLayout": None}, {"VideoLayout": "{grid"},
     {"Format": "avi"}, {"StatusCallbackMethod": "PUT"}, {"Trim": "maybe"}],
)  # fmt: skip
def test_invalid_requests_are_refused(
    api: requests.Session, base_url: str, manual: Any, change: dict[str, Any]
) -> None:
    room = room_with_recordings(manual, 1000)
    form = {"RoomSid": room, "AudioSources": "*", "VideoLayout": GRID} | change

    answer = api.post(f"{base_url}/v1/Compositions",
                      data={k: v for k, v in form.items() if v is not None}, timeout=5)  # fmt: skip

    assert answer.status_code == 400
    assert answer.json()["status"] == 400
    assert manual.compositions() == []


def test_authentication_and_unknown_compositions(base_url: str, api: requests.Session) -> None:
    assert requests.post(f"{base_url}/v1/Compositions", timeout=5).status_code == 401
    unknown = f"{base_url}/v1/Compositions/CJ{'0' * 32}"
    assert api.get(unknown, timeout=5).status_code == 404
    assert api.get(f"{unknown}/Media", timeout=5, allow_redirects=False).status_code == 404


def test_list_filters_pages_and_delete(api: requests.Session, base_url: str, manual: Any) -> None:
    room, other = room_with_recordings(manual, 1000), room_with_recordings(manual, 1000)
    sids = [create(api, base_url, room).json()["sid"] for _ in range(3)]
    create(api, base_url, other)

    seen: list[str] = []
    url = f"{base_url}/v1/Compositions"
    params: dict[str, Any] | None = {"RoomSid": room, "PageSize": 2}
    while url:
        page = api.get(url, params=params, timeout=5).json()
        assert page["meta"]["key"] == "compositions"
        seen += [c["sid"] for c in page["compositions"]]
        url, params = page["meta"]["next_page_url"], None

    assert sorted(seen) == sorted(sids)
    assert api.delete(f"{base_url}/v1/Compositions/{sids[0]}", timeout=5).status_code == 204
    deleted = api.get(f"{base_url}/v1/Compositions", params={"Status": "deleted"}, timeout=5)
    assert [c["sid"] for c in deleted.json()["compositions"]] == [sids[0]]


def test_reset_forgets_compositions_and_their_pending_callbacks(
    api: requests.Session, base_url: str, control: Any, receiver: CallbackReceiver
) -> None:
    control.set_composition_settings(auto_advance_ms=300)
    create(api, base_url, room_with_recordings(control, 1000), StatusCallback=receiver.url)
    wait_for_callbacks(receiver, 1)

    control.reset()
    time.sleep(0.6)  # past the next automatic step, which must not happen

    assert control.compositions() == [] and events(receiver) == ["composition-enqueued"]


def test_resources_and_pages_conform_to_the_spec(
    twilio_spec: dict[str, Any], api: requests.Session, base_url: str, manual: Any
) -> None:
    validator = _component(twilio_spec, "video.v1.composition")
    properties = set(twilio_spec["components"]["schemas"]["video.v1.composition"]["properties"])
    room = room_with_recordings(manual, 1000)
    created = create(api, base_url, room, StatusCallback="https://example.com/cb").json()
    assert _errors(validator, created) == [] and set(created) == properties
    manual.advance_composition(created["sid"], to="completed")
    fetched = api.get(created["url"], timeout=5).json()
    assert _errors(validator, fetched) == [] and set(fetched) == properties

    page = api.get(f"{base_url}/v1/Compositions", timeout=5).json()
    assert _errors(_list_page(twilio_spec, "/v1/Compositions"), page) == []
