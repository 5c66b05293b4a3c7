"""Room completion over the real stack: simulated rooms' callbacks, shuffled and duplicated,
sent from several threads; the forward target gets exactly one ``room.recordings_ready`` per
room, with every recording of the room."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess, RoomSimulator
from emulator.client.room_callbacks import recordings_from_callbacks
from tests.integration.conftest import Stack, wait_for
from tests.integration.test_pipeline import post, resource
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, room_params
from workers.delivery.dedup import event_id
from workers.pipeline.rooms import ready_event_id

pytestmark = pytest.mark.integration

READY = "room.recordings_ready"
# (participants, record, fail_recordings) of each simulated room.
ROOMS = ((2, True, 0), (3, True, 1), (1, True, 0), (1, False, 0))


def plan_rooms(
    twilio: EmulatorProcess, callback_url: str, seed: int, rooms: Iterable[tuple[int, bool, int]]
) -> list[list[dict[str, str]]]:
    """The callbacks of each room. The emulator is brought to the state Twilio is in when the
    rooms end: every room and recording exists, no recording is final yet."""
    rng = random.Random(seed)
    plans = []
    with RoomSimulator(twilio.control, callback_url, ACCOUNT_SID, AUTH_TOKEN, rng=rng) as sim:
        for participants, record, failing in rooms:
            plan = sim.plan(participants, record=record, fail_recordings=failing)
            for params in plan:
                if params["StatusCallbackEvent"] in ("room-created", "recording-started"):
                    sim.sync_emulator(params)
            plans.append(plan)
    return plans


def shuffled(rng: random.Random, callbacks: list[dict[str, str]]) -> list[dict[str, str]]:
    """Every callback, some twice (a second ``room-ended`` with another Timestamp, so with
    another event id), in random order."""
    sent = list(callbacks)
    for params in rng.sample(callbacks, len(callbacks) // 3):
        again = dict(params)
        if again["StatusCallbackEvent"] == "room-ended":
            again["Timestamp"] = again["Timestamp"].replace("Z", "1Z")
        sent.append(again)
    rng.shuffle(sent)
    return sent


def send_all(twilio: EmulatorProcess, url: str, callbacks: list[dict[str, str]]) -> list[int]:
    """Send from 4 threads, each keeping the emulator in step as Twilio would; the answers."""
    local = threading.local()

    def send(params: dict[str, str]) -> int:
        if not hasattr(local, "sim"):
            local.sim = RoomSimulator(twilio.control, url, ACCOUNT_SID, AUTH_TOKEN,
                                      rng=random.Random(0))  # fmt: skip
        return local.sim.send(params).status or 0

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(send, callbacks))


def idle(stack: Stack) -> bool:
    """No task queued, running, unacknowledged or waiting for a retry."""
    r = stack.redis
    delayed = sum(r.zcard(key) for key in r.scan_iter("roomrec:delayed:*"))
    queued = r.llen("roomrec.events") + r.llen("roomrec.handlers") + r.hlen("unacked")
    return queued + delayed == 0


def ready_bodies(target: ForwardTarget) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for delivery in target.deliveries:
        if delivery.body["type"] == READY:
            found.setdefault(delivery.body["data"]["event"]["room_sid"], []).append(delivery.body)
    return found


def settle(stack: Stack, target: ForwardTarget, expected: set[str], timeout: float = 90) -> None:
    """Wait until every id in ``expected`` was delivered and the stack has nothing left to do."""
    wait_for(lambda: expected <= {d.webhook_id for d in target.deliveries} and idle(stack),
             timeout, f"{len(expected)} deliveries and an idle stack")  # fmt: skip


def test_exactly_one_ready_event_per_room_whatever_the_order(
    start_stack, twilio: EmulatorProcess, forward_target: ForwardTarget
) -> None:
    stack = start_stack(ROOM_READY_EVENTS="1", concurrency=3)
    rng = random.Random(2024)
    plans = plan_rooms(twilio, stack.callback_url, 2024, ROOMS)
    sent = shuffled(rng, [params for plan in plans for params in plan])

    answers = send_all(twilio, stack.callback_url, sent)

    assert set(answers) == {204}
    rooms = [plan[0]["RoomSid"] for plan in plans]
    settle(stack, forward_target, {event_id(p) for p in sent} | {ready_event_id(r) for r in rooms})
    assert forward_target.invalid == [] and stack.dead_letters() == []
    delivered = Counter(d.webhook_id for d in forward_target.deliveries)
    assert set(delivered.values()) == {1}  # every event once, the ready events included
    ready = ready_bodies(forward_target)
    assert sorted(ready) == sorted(rooms)
    for plan in plans:
        room = plan[0]["RoomSid"]
        [body] = ready[room]
        expected = {r.sid: r.status for r in recordings_from_callbacks(plan)}
        listed = body["data"]["recordings"]
        assert {r["sid"]: r["status"] for r in listed} == expected
        assert body["data"]["event"]["recording_count"] == len(expected)
        for recording in listed:
            assert recording == resource(twilio, room, recording["sid"])
        assert [r["date_created"] for r in listed] == sorted(r["date_created"] for r in listed)


def test_no_ready_event_while_a_recording_is_processing(
    start_stack, twilio: EmulatorProcess, forward_target: ForwardTarget
) -> None:
    stack = start_stack(ROOM_READY_EVENTS="1")
    [plan] = plan_rooms(twilio, stack.callback_url, 7, [(2, True, 0)])
    ended = next(i for i, p in enumerate(plan) if p["StatusCallbackEvent"] == "room-ended")
    before, after = plan[: ended + 1], plan[ended + 1 :]  # the recordings complete after
    assert {p["StatusCallbackEvent"] for p in after} == {"recording-completed"}

    assert set(send_all(twilio, stack.callback_url, before)) == {204}
    settle(stack, forward_target, {event_id(p) for p in before})
    assert ready_bodies(forward_target) == {}
    listings = [r for r in twilio.control.requests() if r["path"].endswith("/Recordings")]
    assert len(listings) == 1  # room-ended listed the recordings, all still processing

    assert set(send_all(twilio, stack.callback_url, after)) == {204}
    room = plan[0]["RoomSid"]
    settle(stack, forward_target, {event_id(p) for p in after} | {ready_event_id(room)})
    [body] = ready_bodies(forward_target)[room]
    assert {r["status"] for r in body["data"]["recordings"]} == {"completed"}
    assert len(body["data"]["recordings"]) == 4


def test_recordings_whose_callbacks_never_came_are_listed(
    start_stack, twilio: EmulatorProcess, forward_target: ForwardTarget
) -> None:
    stack = start_stack(ROOM_READY_EVENTS="1")
    [plan] = plan_rooms(twilio, stack.callback_url, 9, [(1, True, 0)])
    with RoomSimulator(twilio.control, stack.callback_url, ACCOUNT_SID, AUTH_TOKEN,
                       rng=random.Random(0)) as sim:  # fmt: skip
        for params in plan:  # Twilio completes them, but their callbacks are lost
            sim.sync_emulator(params)
    ended = next(p for p in plan if p["StatusCallbackEvent"] == "room-ended")
    twilio.control.add_fault("/Recordings$", "status", status=503, count=2)

    assert post(stack.callback_url, ended).status_code == 204

    room = ended["RoomSid"]
    settle(stack, forward_target, {event_id(ended), ready_event_id(room)})
    [body] = ready_bodies(forward_target)[room]
    assert {r["sid"] for r in body["data"]["recordings"]} == {
        r.sid for r in recordings_from_callbacks(plan)
    }
    statuses = [r["status"] for r in twilio.control.requests() if r["path"].endswith("/Recordings")]
    assert statuses == [503, 503, 200]  # the listing was retried on its own


def test_the_web_refuses_internal_events(start_stack, twilio: EmulatorProcess) -> None:
    stack = start_stack(ROOM_READY_EVENTS="1")
    params = room_params("room-recordings_ready", RecordingCount="0")

    answer = post(stack.callback_url, params)

    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert "StatusCallbackEvent" in answer.json()["errors"]
    assert stack.redis.llen("roomrec.events") == 0
    assert requests.get(f"{stack.web_url}/healthz", timeout=5).status_code == 200
