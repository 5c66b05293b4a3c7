"""The room tracker's Lua script on the private Redis: exactly one update makes a room ready,
whatever the order, repetition and concurrency of the updates."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.twilio import sid
from workers.state.holds import Hold
from workers.state.keys import ROOM_RECORDINGS_KEY, ROOM_STATE_KEY
from workers.state.rooms import (
    DONE,
    EMIT,
    LIST,
    UPDATE,
    WAIT,
    Observation,
    RoomTracker,
    Update,
    final_status,
    room_state,
)

FINAL = ("completed", "failed", "deleted")
TTL = 3600  # how long the room's keys live (a worker's marks_ttl): not what these tests check
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.fixture
def tracker(client: redis.Redis) -> RoomTracker:
    return RoomTracker(client, ttl=TTL)


def seen(recording: str, status: str, resource_status: str | None = None) -> Observation:
    shown = resource_status or status
    return Observation(recording, status, {"sid": recording, "status": shown}, shown)


# --- plain cases ----------------------------------------------------------------------------


def test_a_room_is_ready_once_ended_listed_and_every_recording_final(
    client: redis.Redis, tracker: RoomTracker
):
    room, rt1, rt2 = sid("RM"), sid("RT"), sid("RT")

    assert (
        tracker.update(Update(room, "a", recordings=[seen(rt1, "processing")]), "t1").decision
        == WAIT
    )
    assert tracker.update(Update(room, "ended", ended=True), "t2").decision == LIST
    listing = Update(
        room, "ended", listed=True, recordings=[seen(rt1, "processing"), seen(rt2, "failed")]
    )
    assert tracker.update(listing, "t3").decision == WAIT
    outcome = tracker.update(Update(room, "b", recordings=[seen(rt1, "completed")]), "t4")

    assert (outcome.decision, outcome.ready_at) == (EMIT, "t4")
    state = room_state(client, room)
    assert state.ready_by == "b" and state.statuses == {rt1: "completed", rt2: "failed"}


def test_the_emitter_is_told_again_and_everyone_else_that_it_is_done(
    client: redis.Redis, tracker: RoomTracker
):
    room = sid("RM")
    tracker.update(Update(room, "end", ended=True), "t1")
    assert tracker.update(Update(room, "end", listed=True), "t2").decision == EMIT  # no recordings

    assert tracker.update(Update(room, "end", listed=True), "t9").ready_at == "t2"  # redelivered
    assert tracker.update(Update(room, "end"), "t9").decision == EMIT
    assert (
        tracker.update(
            Update(room, "other", recordings=[seen(sid("RT"), "processing")]), "t9"
        ).decision
        == DONE
    )
    assert room_state(client, room).statuses == {}  # frozen once ready


def test_only_the_first_room_ended_lists_and_lists_again_when_redelivered(
    client: redis.Redis, tracker: RoomTracker
):
    room = sid("RM")

    assert tracker.update(Update(room, "end-1", ended=True), "t1").decision == LIST
    assert tracker.update(Update(room, "end-2", ended=True), "t2").decision == WAIT  # a resend
    assert tracker.update(Update(room, "end-1", ended=True), "t3").decision == LIST
    assert room_state(client, room).ended


@pytest.mark.parametrize("final", FINAL)
def test_a_final_status_never_goes_back(client: redis.Redis, tracker: RoomTracker, final: str):
    room, rt = sid("RM"), sid("RT")
    tracker.update(Update(room, "a", recordings=[seen(rt, final)]), "t1")
    tracker.update(Update(room, "b", recordings=[seen(rt, "processing")]), "t2")

    state = room_state(client, room)
    assert state.statuses[rt] == final
    assert state.resources[rt]["status"] == final


def test_a_resource_is_replaced_only_by_one_as_advanced(client: redis.Redis, tracker: RoomTracker):
    room, rt = sid("RM"), sid("RT")
    # The callback says completed while Twilio's resource still said processing (it lags).
    tracker.update(Update(room, "a", recordings=[seen(rt, "completed", "processing")]), "t1")
    assert room_state(client, room).resources[rt]["status"] == "processing"

    tracker.update(Update(room, "b", recordings=[seen(rt, "processing", "completed")]), "t2")
    tracker.update(Update(room, "c", recordings=[seen(rt, "processing", "processing")]), "t3")

    state = room_state(client, room)
    assert state.statuses[rt] == "completed"
    assert state.resources[rt]["status"] == "completed"


def test_the_state_expires_and_every_update_refreshes_it(client: redis.Redis):
    tracker, room = RoomTracker(client, ttl=100), sid("RM")
    update = Update(room, "a", account_sid="AC1", recordings=[seen(sid("RT"), "processing")])
    tracker.update(update, "t1")

    assert 0 < client.ttl(ROOM_STATE_KEY.format(room)) <= 100
    assert 0 < client.ttl(ROOM_RECORDINGS_KEY.format(room)) <= 100


def test_room_name_and_account_are_the_first_known(client: redis.Redis, tracker: RoomTracker):
    room = sid("RM")
    tracker.update(Update(room, "a", account_sid="AC1", room_name="one"), "t1")
    tracker.update(Update(room, "b", account_sid="AC2", room_name="two"), "t2")

    state = room_state(client, room)
    assert (state.account_sid, state.room_name) == ("AC1", "one")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [(("processing", "completed"), "completed"), (("failed", None), "failed"),
     (("completed", "deleted"), "deleted"), (("processing", "processing"), "processing")],
)  # fmt: skip
def test_final_status_takes_the_most_advanced(statuses: tuple[str | None, ...], expected: str):
    assert final_status(*statuses) == expected


def test_unknown_statuses_are_refused(tracker: RoomTracker):
    with pytest.raises(ValueError, match="unknown status"):
        tracker.update(Update(sid("RM"), "a", recordings=[seen(sid("RT"), "done")]), "t")


# --- any order, any repetition --------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    caller: str
    update: Update


def room_events(room: str, recordings: list[str], finals: list[str]) -> list[Delivery]:
    """The callbacks of a room: one started and one final event per recording, room-ended."""
    events = [Delivery("ended", Update(room, "ended", ended=True))]
    for index, (rt, final) in enumerate(zip(recordings, finals, strict=True)):
        for kind, status in (("started", "processing"), ("final", final)):
            caller = f"{kind}-{index}"
            events.append(Delivery(caller, Update(room, caller, recordings=[seen(rt, status)])))
    return events


@EXAMPLES
@given(data=st.data())
def test_exactly_one_ready_whatever_the_order_and_duplicates(
    client: redis.Redis, tracker: RoomTracker, data
):
    room = sid("RM")
    count = data.draw(st.integers(min_value=0, max_value=4), label="recordings")
    recordings = [sid("RT") for _ in range(count)]
    finals = data.draw(st.lists(st.sampled_from(FINAL[:2]), min_size=count, max_size=count))
    base = room_events(room, recordings, finals)
    pending = list(data.draw(st.permutations(base), label="order"))
    for _ in range(data.draw(st.integers(min_value=0, max_value=6), label="duplicates")):
        again = data.draw(st.sampled_from(base))
        pending.insert(data.draw(st.integers(0, len(pending))), again)

    emitters: set[str] = set()
    delivered: set[str] = set()
    step = 0
    while pending:
        delivery = pending.pop(0)
        step += 1
        outcome = tracker.update(delivery.update, f"t{step}")
        delivered.add(delivery.caller)
        if outcome.decision == LIST:
            # Twilio lists every recording: final once its final callback went out (and maybe
            # sooner), else possibly still processing.
            listed = []
            for index, (rt, final) in enumerate(zip(recordings, finals, strict=True)):
                done = f"final-{index}" in delivered or data.draw(st.booleans())
                listed.append(seen(rt, final if done else "processing"))
            listing = Delivery(delivery.caller, Update(room, delivery.caller, listed=True,
                                                       recordings=listed))  # fmt: skip
            pending.insert(data.draw(st.integers(0, len(pending))), listing)
        if outcome.decision == EMIT:
            emitters.add(delivery.caller)
            state = room_state(client, room)
            assert state.ended and state.listed
            assert set(state.statuses) == set(recordings)
            assert all(status in FINAL for status in state.statuses.values())

    assert len(emitters) == 1
    state = room_state(client, room)
    assert state.statuses == dict(zip(recordings, finals, strict=True))


def deliver_all(client: redis.Redis, room: str, recordings: list[str],
                events: list[Delivery]) -> list[str]:  # fmt: skip
    """Apply ``events`` from 8 threads at once; the callers told to emit."""
    emitters: list[str] = []
    lock = threading.Lock()
    processing = [seen(rt, "processing") for rt in recordings]  # Twilio's listing

    def deliver(delivery: Delivery) -> None:
        tracker = RoomTracker(client, ttl=TTL)
        outcome = tracker.update(delivery.update, "now")
        if outcome.decision == LIST:
            listing = Update(room, delivery.caller, listed=True, recordings=processing)
            outcome = tracker.update(listing, "now")
        if outcome.decision == EMIT:
            with lock:
                emitters.append(delivery.caller)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(deliver, events))
    return emitters


def test_concurrent_workers_make_one_ready(client: redis.Redis):
    rng = random.Random(5)
    for _ in range(10):
        room = sid("RM")
        recordings = [sid("RT") for _ in range(6)]
        events = room_events(room, recordings, ["completed"] * 6)
        events = events + rng.sample(events, 5)  # redeliveries
        rng.shuffle(events)

        emitters = deliver_all(client, room, recordings, events)

        assert len(set(emitters)) == 1, emitters


# --- the update as a task's last write ----------------------------------------------------------


def held(client: redis.Redis, member: str) -> Hold:
    """A hold like a ledger entry's: ``member`` in two hashes and a sorted set."""
    hold = Hold(member, hashes=("test:held", "test:held:counts"), sorted_sets=("test:held:due",))
    client.hset("test:held", member, "message")
    client.hset("test:held:counts", member, 1)
    client.zadd("test:held:due", {member: 1.0})
    return hold


def still_held(client: redis.Redis, hold: Hold) -> bool:
    found = [client.hexists(key, hold.member) for key in hold.hashes]
    found += [client.zscore(key, hold.member) is not None for key in hold.sorted_sets]
    assert len(set(found)) == 1  # all or nothing
    return found[0]


def test_an_update_that_ends_its_callers_work_releases_its_hold(
    client: redis.Redis, tracker: RoomTracker
) -> None:
    room, recording = sid("RM"), sid("RT")
    waiting, other = held(client, "evt_wait"), held(client, "evt_other")

    update = Update(room, "evt_wait", recordings=[seen(recording, "processing")])
    assert tracker.update(update, "t1", release=waiting).decision == WAIT

    assert not still_held(client, waiting)
    assert still_held(client, other)


def test_an_update_after_which_its_caller_lists_or_emits_keeps_its_hold(
    client: redis.Redis, tracker: RoomTracker
) -> None:
    room, recording = sid("RM"), sid("RT")
    listing, emitting, late = (held(client, name) for name in ("evt_end", "evt_last", "evt_late"))

    assert tracker.update(Update(room, "evt_end", ended=True), "t1", release=listing).decision \
        == LIST  # fmt: skip
    assert still_held(client, listing)
    tracker.update(Update(room, "evt_end", listed=True, recordings=[seen(recording, "processing")]),
                   "t2")  # fmt: skip
    last = Update(room, "evt_last", recordings=[seen(recording, "completed")])
    assert tracker.update(last, "t3", release=emitting).decision == EMIT
    assert still_held(client, emitting)
    assert tracker.update(last, "t4", release=emitting).decision == EMIT  # redelivered
    assert still_held(client, emitting)
    again = Update(room, "evt_late", recordings=[seen(recording, "completed")])
    assert tracker.update(again, "t5", release=late).decision == DONE
    assert not still_held(client, late)


def test_writes_queued_before_go_in_one_transaction_with_the_update(
    client: redis.Redis, tracker: RoomTracker
) -> None:
    room = sid("RM")
    hold = held(client, "evt_a")
    client.script_load(UPDATE)
    executed = int(client.info("commandstats").get("cmdstat_exec", {}).get("calls", 0))
    update = Update(room, "evt_a", recordings=[seen(sid("RT"), "processing")])

    outcome = tracker.update(
        update, "t1", before=lambda pipe: pipe.set("test:mark", 1), release=hold
    )

    assert outcome.decision == WAIT
    assert client.get("test:mark") == "1" and not still_held(client, hold)
    assert int(client.info("commandstats")["cmdstat_exec"]["calls"]) == executed + 1


def test_a_redis_without_the_script_gets_it_and_the_transaction_runs_again(
    client: redis.Redis, tracker: RoomTracker
) -> None:
    room, recording = sid("RM"), sid("RT")
    hold = held(client, "evt_a")
    client.script_flush()  # a restarted Redis: no script by its digest
    queued: list[int] = []

    def before(pipe: redis.client.Pipeline) -> None:
        queued.append(1)
        pipe.incr("test:mark")

    outcome = tracker.update(Update(room, "evt_a", recordings=[seen(recording, "processing")]),
                             "t1", before=before, release=hold)  # fmt: skip

    assert outcome.decision == WAIT and len(queued) == 2
    assert room_state(client, room).statuses == {recording: "processing"}
    assert not still_held(client, hold)
    assert client.get("test:mark") == "2"  # the writes ran twice: they must set, not add
