"""Replaying dead letters and recordings: which task is queued, where, with which target, and
when the entry goes. Publishes through the broker into the private Redis, then reads the
queues."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from schemas import RoomRecordingSchema
from schemas.settings import DEFAULT_DEDUP_TTL
from tests.support.queues import task_messages
from tests.support.twilio import recording_params
from tests.unit.schemas.factories import resource_for
from tests.unit.workers.helpers import worker_settings
from workers.delivery.broker import Broker
from workers.delivery.celery_app import make_celery
from workers.delivery.choice import open_broker
from workers.delivery.kombu_broker import KombuBroker
from workers.delivery.redis_broker import RedisBroker
from workers.errors import BrokerUnavailable
from workers.observability.redaction import target_label
from workers.recovery.replay import (
    DeadLetterReplayer,
    configured_targets,
    find_target,
    plan,
    replay_recording,
)
from workers.recovery.stand_in import NotReplayable, stand_in_message
from workers.state.deadletters import DeadLetterStore
from workers.state.keys import INFLIGHT_KEY, SEEN_KEY, done_key

TARGET = "https://hooks.example.com/in?token=s3cr3t"
OTHER = "https://other.example.com/in"
TARGETS: dict[str, tuple[str | None, ...]] = {"log": (None,), "forward": (OTHER, TARGET)}


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


@pytest.fixture
def broker(redis_url: str, client: redis.Redis) -> Iterator[Broker]:
    """The broker of the command line on the default settings: the Redis of REDIS_URL."""
    app = make_celery(redis_url, publish_timeout=2)
    yield open_broker(app, client, broker_url=redis_url, redis_url=redis_url,
                      dedup_ttl=DEFAULT_DEDUP_TTL)  # fmt: skip
    app.close()


def entry(store: DeadLetterStore, stage: str, target: str | None = None) -> dict[str, Any]:
    entry_id = store.add(
        event_id="evt_1", stage=stage, target=target_label(target), attempts=3, error="boom",
        message={"v": 1, "id": "evt_1", "params": {"RoomSid": "RM1"}},
    )  # fmt: skip
    found = store.get(entry_id)
    assert found is not None
    return found


# --- planning -----------------------------------------------------------------------------


def test_the_target_is_found_by_its_fingerprint() -> None:
    assert find_target("forward", target_label(TARGET), TARGETS) == TARGET
    assert find_target("forward", target_label(OTHER), TARGETS) == OTHER
    assert find_target("log", None, TARGETS) is None


@pytest.mark.parametrize(
    ("handler", "label"),
    [("forward", target_label("https://gone.example.com/in")), ("archive", None),
     ("forward", None), ("forward", "https://hooks.example.com/in")],
)  # fmt: skip
def test_a_target_no_longer_configured_is_not_replayable(handler: str, label: str | None) -> None:
    with pytest.raises(NotReplayable):
        find_target(handler, label, TARGETS)


def test_a_handler_entry_replays_that_handler_and_target_only(client: redis.Redis) -> None:
    found = entry(DeadLetterStore(client), "handler:forward", TARGET)

    planned = plan(found, TARGETS)

    assert planned.task == "roomrec.run_handler"
    assert planned.args == ["forward", TARGET, found["message"]]
    assert planned.task_id == plan(found, TARGETS).task_id  # deterministic
    assert "s3cr3t" not in json.dumps(planned.to_json())


def test_a_fetch_entry_replays_the_event(client: redis.Redis) -> None:
    found = entry(DeadLetterStore(client), "fetch")

    planned = plan(found, TARGETS)

    assert (planned.task, planned.args) == ("roomrec.process_event", [found["message"]])


def test_a_room_recordings_entry_lists_the_room_again(client: redis.Redis) -> None:
    entry_id = DeadLetterStore(client).add(
        event_id="evt_ended", stage="room-recordings", target=None, attempts=6, error="503",
        message={"room_sid": "RM1", "caller": "evt_ended"},
    )  # fmt: skip
    found = DeadLetterStore(client).get(entry_id)
    assert found is not None

    planned = plan(found, TARGETS)

    assert (planned.task, planned.args) == ("roomrec.room_recordings", ["RM1", "evt_ended"])
    assert planned.task_id == "evt_ended.rooms.replay"


def test_a_compose_entry_composes_the_room_again(client: redis.Redis) -> None:
    entry_id = DeadLetterStore(client).add(
        event_id="compose.RM1", stage="compose", target=None, attempts=6, error="503",
        message={"room_sid": "RM1"},
    )  # fmt: skip
    found = DeadLetterStore(client).get(entry_id)
    assert found is not None

    planned = plan(found, TARGETS)

    assert (planned.task, planned.args) == ("roomrec.compose_room", ["RM1"])


def test_a_room_entry_without_its_room_is_not_replayable(client: redis.Redis) -> None:
    with pytest.raises(NotReplayable, match="without its room"):
        plan(entry(DeadLetterStore(client), "compose"), TARGETS)


def test_a_validate_entry_is_not_replayable(client: redis.Redis) -> None:
    with pytest.raises(NotReplayable, match="validate"):
        plan(entry(DeadLetterStore(client), "validate"), TARGETS)


def test_configured_targets_are_the_workers(redis_url: str, client: redis.Redis) -> None:
    settings = worker_settings(REDIS_URL=redis_url, FORWARD_URLS=f"{TARGET},{OTHER}")

    assert configured_targets(settings, client) == {"log": (None,), "forward": (TARGET, OTHER)}
    assert configured_targets(settings, client, only={"log", "archive"}) == {"log": (None,)}


# --- replaying ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "target", "queue", "task"),
    [("handler:forward", TARGET, "roomrec.handlers", "roomrec.run_handler"),
     ("handler:log", None, "roomrec.handlers", "roomrec.run_handler"),
     ("fetch", None, "roomrec.events", "roomrec.process_event")],
)  # fmt: skip
def test_a_replay_queues_the_task_then_removes_the_entry(
    client: redis.Redis,
    broker: Broker,
    redis_url: str,
    stage: str,
    target: str | None,
    queue: str,
    task: str,
) -> None:
    store = DeadLetterStore(client)
    found = entry(store, stage, target)

    replayed = DeadLetterReplayer(store, broker, TARGETS).replay(found)

    [queued] = task_messages(redis_url, queue)
    assert (queued["task"], queued["id"]) == (task, replayed.task_id)
    assert queued["args"] == replayed.args
    assert client.hexists(INFLIGHT_KEY, replayed.task_id)  # in the ledger: never lost
    assert store.list() == []


def test_an_entry_that_failed_again_meanwhile_stays(client: redis.Redis, broker: Broker) -> None:
    store = DeadLetterStore(client)
    stale = entry(store, "handler:forward", TARGET)
    fresh = entry(store, "handler:forward", TARGET)  # the replayed task failed anew
    assert fresh["failed_at"] != stale["failed_at"]

    DeadLetterReplayer(store, broker, TARGETS).replay(stale)

    assert [e["failed_at"] for e in store.list()] == [fresh["failed_at"]]


@pytest.mark.parametrize("same_redis", [False, True])
def test_a_broker_that_does_not_answer_keeps_the_entry(
    client: redis.Redis, redis_url: str, same_redis: bool
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    dead = make_celery(dead_url, publish_timeout=0.5)
    # Another broker than REDIS_URL (Celery's publish), or the Redis of REDIS_URL itself down.
    dead_client = redis.Redis.from_url(dead_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    broker = open_broker(dead, dead_client if same_redis else client, broker_url=dead_url,
                         redis_url=dead_url if same_redis else redis_url,
                         dedup_ttl=DEFAULT_DEDUP_TTL)  # fmt: skip
    assert isinstance(broker, RedisBroker if same_redis else KombuBroker)
    store = DeadLetterStore(client)
    found = entry(store, "handler:forward", TARGET)

    with pytest.raises(BrokerUnavailable):
        DeadLetterReplayer(store, broker, TARGETS).replay(found)
    assert len(store) == 1
    dead.close()
    dead_client.close()


@pytest.mark.parametrize("force", [False, True])
def test_replaying_a_recording_queues_its_event(
    client: redis.Redis, broker: Broker, redis_url: str, force: bool
) -> None:
    params = recording_params()
    recording = RoomRecordingSchema().load(resource_for(params))
    message = stand_in_message(recording, source="replay")
    marks = [done_key(message.id, "forward", TARGET), done_key(message.id, "log", None)]
    for key in marks:
        client.set(key, 1)

    cleared = replay_recording(message, broker, client, TARGETS, force=force)

    [queued] = task_messages(redis_url, "roomrec.events")
    assert queued["task"] == "roomrec.process_event"
    assert queued["args"][0]["params"]["RecordingSid"] == params["RecordingSid"]
    assert queued["args"][0]["id"] == message.id
    assert cleared == (2 if force else 0)
    assert client.exists(*marks) == (0 if force else 2)
    assert client.exists(SEEN_KEY.format(message.id)) == 1
