"""A simulated room's callbacks in; every recording out at the forward target, exactly once."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess, RoomSimulator
from tests.integration.conftest import FORWARD_SECRET, wait_for
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, recording_params, sign, timestamp
from workers.delivery.dedup import event_id
from workers.pipeline.rooms import ready_event_id
from workers.state.outcomes import outcomes_of


def simulator(
    twilio: EmulatorProcess, url: str, seed: int = 7, method: str = "POST"
) -> RoomSimulator:
    return RoomSimulator(
        twilio.control, url, ACCOUNT_SID, AUTH_TOKEN, rng=random.Random(seed), method=method
    )


def resource(twilio: EmulatorProcess, room_sid: str, recording_sid: str) -> dict[str, Any]:
    """The RoomRecording as the emulated Twilio serves it."""
    response = requests.get(
        f"{twilio.url}/v1/Rooms/{room_sid}/Recordings/{recording_sid}",
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )
    response.raise_for_status()
    return dict(response.json())


def completed_recording(twilio: EmulatorProcess, **fields: Any) -> dict[str, str]:
    """A completed recording in the emulator and the callback announcing it."""
    params = recording_params("recording-completed")
    twilio.control.create_recording(
        sid=params["RecordingSid"], room_sid=params["RoomSid"],
        participant_sid=params["ParticipantSid"], source_sid=params["SourceSid"],
        type="video", codec="vp8", container_format="mkv", size=105956, duration=3,
        status="completed", **fields,
    )  # fmt: skip
    return params


def post(url: str, params: dict[str, str]) -> requests.Response:
    headers = {"X-Twilio-Signature": sign(url, params)}
    return requests.post(url, data=params, headers=headers, timeout=5)


def by_type(target: ForwardTarget, event_type: str) -> list[dict[str, Any]]:
    return [d.body for d in target.deliveries if d.body["type"] == event_type]


def test_a_simulated_room_reaches_the_forward_target_exactly_once(
    start_stack, twilio, forward_target
):
    stack = start_stack()
    room = simulator(twilio, stack.callback_url).play(participants=3)

    assert {sent.status for sent in room.callbacks} == {204}
    wait_for(lambda: len(forward_target.deliveries) >= len(room.callbacks) + 1, 60,
             f"{len(room.callbacks)} deliveries and the room's ready event")  # fmt: skip

    delivered = Counter(d.webhook_id for d in forward_target.deliveries)
    expected = Counter(event_id(sent.params) for sent in room.callbacks)
    expected[ready_event_id(room.room_sid)] += 1
    assert delivered == expected  # every event once, one ready event, nothing else
    assert forward_target.invalid == []
    (ready,) = by_type(forward_target, "room.recordings_ready")
    assert ready["data"]["event"]["room_sid"] == room.room_sid
    assert {r["sid"] for r in ready["data"]["recordings"]} == {r.sid for r in room.recordings}
    assert {r["status"] for r in ready["data"]["recordings"]} == {"completed"}

    completed = {body["data"]["event"]["recording_sid"]: body
                 for body in by_type(forward_target, "recording.completed")}  # fmt: skip
    assert set(completed) == {r.sid for r in room.recordings}
    for recording_sid, body in completed.items():
        assert body["data"]["recording"] == resource(twilio, room.room_sid, recording_sid)
        assert body["data"]["recording"]["status"] == "completed"
        assert body["data"]["event"]["room_sid"] == room.room_sid
    for body in by_type(forward_target, "room.ended"):
        assert "recording" not in body["data"]
    assert stack.dead_letters() == []


def test_forwarded_body_has_the_documented_shape(start_stack, twilio, forward_target):
    stack = start_stack()
    params = completed_recording(twilio)
    assert post(stack.callback_url, params).status_code == 204

    (delivery,) = wait_for(lambda: forward_target.deliveries, 30, "one delivery")
    body = delivery.body
    assert body["type"] == "recording.completed"
    assert body["timestamp"] == params["Timestamp"]
    event = body["data"]["event"]
    assert event["recording_sid"] == params["RecordingSid"]
    assert event["codec"] == "VP8" and event["container"] == "mkv"
    assert event["size"] == 105956 and event["offset_from_twilio_video_epoch"] == 155137307765
    assert body["data"]["recording"]["sid"] == params["RecordingSid"]
    assert delivery.webhook_id == event_id(params)


def test_duplicate_callbacks_are_processed_once(start_stack, twilio, forward_target):
    stack = start_stack()
    params = completed_recording(twilio)
    answers = [post(stack.callback_url, params) for _ in range(3)]
    # Same recording and event, another Timestamp (within CALLBACK_MAX_SKEW of the clock).
    later = dict(params, Timestamp=timestamp(datetime.now(UTC) + timedelta(seconds=30)))
    answers.append(post(stack.callback_url, later))

    assert [a.status_code for a in answers] == [204, 204, 204, 204]
    wait_for(lambda: forward_target.deliveries, 30, "a delivery")
    stack.worker.wait_for_log("succeeded")
    fetches = [r for r in twilio.control.requests() if params["RecordingSid"] in r["path"]]
    assert len(forward_target.deliveries) == 1
    assert len(fetches) == 1


def test_twilio_429_5xx_and_dropped_connections_are_retried(start_stack, twilio, forward_target):
    stack = start_stack()
    recordings = [completed_recording(twilio) for _ in range(4)]
    sids = [p["RecordingSid"] for p in recordings]
    twilio.control.add_fault(sids[0], "status", status=429, retry_after=1, count=2)
    twilio.control.add_fault(sids[1], "status", status=503, count=2)
    twilio.control.add_fault(sids[2], "drop", count=2)
    twilio.control.add_fault(sids[3], "status", status=404, count=2)  # not visible yet
    for params in recordings:
        assert post(stack.callback_url, params).status_code == 204

    wait_for(lambda: len(forward_target.deliveries) >= 4, 60, "4 deliveries")
    assert sorted(d.body["data"]["recording"]["sid"] for d in forward_target.deliveries) == sorted(
        sids
    )
    served = twilio.control.requests()
    for sid, failure in zip(sids, (429, 503, None, 404), strict=True):
        statuses = [r["status"] for r in served if sid in r["path"]]
        assert statuses[-1] == 200, (sid, statuses)
        if failure:
            assert statuses.count(failure) == 2, (sid, statuses)
    assert stack.dead_letters() == []


def test_bad_twilio_credentials_fail_at_once_and_loudly(start_stack, twilio, forward_target):
    stack = start_stack(TWILIO_AUTH_TOKEN="not-the-token")
    params = completed_recording(twilio)
    assert post(stack.callback_url, params).status_code == 204

    (letter,) = wait_for(stack.dead_letters, 30, "a dead letter")
    assert letter["stage"] == "fetch" and letter["attempts"] == 1
    assert "401" in letter["error"]
    assert "not-the-token" not in str(letter) and "not-the-token" not in stack.logs()
    assert len([r for r in twilio.control.requests() if params["RecordingSid"] in r["path"]]) == 1
    assert forward_target.deliveries == []


def test_forward_retries_keep_the_webhook_id_and_spare_other_targets(
    start_stack, twilio, forward_target
):
    other = ForwardTarget(FORWARD_SECRET)
    try:
        forward_target.answers.extend([503, 500])
        stack = start_stack(FORWARD_URLS=f"{forward_target.url},{other.url}")
        params = completed_recording(twilio)
        assert post(stack.callback_url, params).status_code == 204

        wait_for(lambda: forward_target.deliveries, 30, "delivery after two failures")
        assert [a.status for a in forward_target.attempts] == [503, 500, 200]
        assert {a.webhook_id for a in forward_target.attempts} == {event_id(params)}
        assert [a.status for a in other.attempts] == [200]  # not re-sent by the other's retries
    finally:
        other.stop()


def test_a_410_stops_delivery_of_that_event_to_that_url(start_stack, twilio, forward_target):
    forward_target.answers.append(410)
    stack = start_stack()
    params = completed_recording(twilio)
    assert post(stack.callback_url, params).status_code == 204

    wait_for(lambda: forward_target.attempts, 30, "one attempt")
    stack.worker.wait_for_log("410 Gone")
    outcomes = wait_for(lambda: outcomes_of(stack.redis, event_id(params)), 10, "outcomes")
    assert {(o["handler"], o["status"]) for o in outcomes} == {
        ("log", "succeeded"),
        ("forward", "gone"),
    }
    assert [a.status for a in forward_target.attempts] == [410]
    assert stack.dead_letters() == []


def test_a_failing_handler_neither_blocks_nor_reruns_the_others(
    start_stack, twilio, forward_target
):
    stack = start_stack(
        HANDLERS="log,tests.support.handlers:always_fails,forward", TASK_MAX_RETRIES="1"
    )
    room = simulator(twilio, stack.callback_url, seed=3).play(participants=1)

    wait_for(lambda: len(stack.dead_letters()) >= len(room.callbacks) + 1, 60, "dead letters")
    letters = stack.dead_letters()
    assert {letter["stage"] for letter in letters} == {
        "handler:tests.support.handlers:always_fails"
    }
    assert {letter["attempts"] for letter in letters} == {2}
    expected = Counter(event_id(sent.params) for sent in room.callbacks)
    expected[ready_event_id(room.room_sid)] += 1
    assert Counter(d.webhook_id for d in forward_target.deliveries) == expected


def test_rooms_with_get_status_callbacks(start_stack, twilio, forward_target):
    stack = start_stack()
    room = simulator(twilio, stack.callback_url, seed=11, method="GET").play(participants=1)

    assert {sent.status for sent in room.callbacks} == {204}
    wait_for(lambda: len(forward_target.deliveries) >= len(room.callbacks) + 1, 60, "deliveries")
    # Counting deliveries is not enough: the room's recordings_ready event is one more.
    wait_for(
        lambda: len(by_type(forward_target, "recording.completed")) >= len(room.recordings), 60,
        "every recording.completed",
    )  # fmt: skip
    time.sleep(1)  # a duplicate would show
    assert len(by_type(forward_target, "recording.completed")) == len(room.recordings)


def test_an_unsigned_callback_is_refused_and_nothing_runs(start_stack, twilio, forward_target):
    stack = start_stack()
    params = completed_recording(twilio)
    forged = {"X-Twilio-Signature": sign(stack.callback_url, params, "another-token")}
    answer = requests.post(stack.callback_url, data=params, headers=forged, timeout=5)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert stack.redis.llen("roomrec.events") == 0
    assert twilio.control.requests() == []


def test_the_main_process_sheds_the_time_limit_timers_of_ended_tasks(
    start_stack, twilio, forward_target
):
    """Each task's time limit is an entry on the main process' timer, only marked cancelled
    when the task ends; the worker drops those entries every few seconds
    (workers.runtime.prefork)."""
    stack = start_stack(LOG_LEVEL="DEBUG")
    for _ in range(5):
        assert post(stack.callback_url, completed_recording(twilio)).status_code == 204
    wait_for(lambda: len(forward_target.deliveries) == 5, 30, "five deliveries")

    stack.worker.wait_for_log("timer: dropped", timeout=15)
    dropped = re.findall(r"timer: dropped (\d+) cancelled entries", stack.worker.log())
    assert sum(int(count) for count in dropped) >= 5
