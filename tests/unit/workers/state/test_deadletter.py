from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from workers.state.deadletters import DeadLetterStore


@pytest.fixture(params=[True, False], ids=["decoded", "bytes"])
def store(request: pytest.FixtureRequest, redis_url: str) -> Iterator[DeadLetterStore]:
    """The store on the private Redis, with and without decode_responses (the runtime decodes)."""
    client = redis.Redis.from_url(redis_url, decode_responses=request.param)
    yield DeadLetterStore(client)
    client.close()


def add(store: DeadLetterStore, event_id: str, stage: str = "fetch", target: str | None = None,
        attempts: int = 1, error: str = "boom") -> str:  # fmt: skip
    return store.add(
        event_id=event_id, stage=stage, target=target, attempts=attempts, error=error,
        message={"v": 1, "id": event_id, "params": {"RoomSid": "RM1"}},
    )  # fmt: skip


def test_an_empty_store(store: DeadLetterStore) -> None:
    assert store.list() == []
    assert len(store) == 0


def test_an_entry_keeps_what_is_needed_to_replay(store: DeadLetterStore) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    entry_id = add(store, "evt_a", "handler:forward", "https://a.example.com/in", 11, "503")

    [entry] = store.list()
    assert entry["id"] == entry_id
    assert entry["event_id"] == "evt_a"
    assert entry["stage"] == "handler:forward"
    assert entry["target"] == "https://a.example.com/in"
    assert entry["attempts"] == 11
    assert entry["error"] == "503"
    assert entry["message"] == {"v": 1, "id": "evt_a", "params": {"RoomSid": "RM1"}}
    failed_at = datetime.fromisoformat(entry["failed_at"])
    assert before <= failed_at <= datetime.now(UTC)
    json.dumps(entry)


def test_entries_are_listed_in_order_of_failure(store: DeadLetterStore) -> None:
    for name in ("evt_c", "evt_a", "evt_b"):
        add(store, name)

    assert [entry["event_id"] for entry in store.list()] == ["evt_c", "evt_a", "evt_b"]
    assert len(store) == 3


def test_re_adding_the_same_event_stage_and_target_replaces(store: DeadLetterStore) -> None:
    first = add(store, "evt_a", "handler:forward", "https://a.example.com/in", 3, "first")
    add(store, "evt_b")

    again = add(store, "evt_a", "handler:forward", "https://a.example.com/in", 11, "second")

    assert again == first
    assert len(store) == 2
    entries = store.list()
    assert [entry["event_id"] for entry in entries] == ["evt_b", "evt_a"]
    assert (entries[1]["attempts"], entries[1]["error"]) == (11, "second")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("evt_a", "fetch", None), ("evt_b", "fetch", None)),
        (("evt_a", "fetch", None), ("evt_a", "validate", None)),
        (("evt_a", "handler:forward", "https://a.example.com/in"),
         ("evt_a", "handler:forward", "https://b.example.com/in")),
        (("evt_a", "handler:forward", "https://a.example.com/in"),
         ("evt_a", "handler:log", "https://a.example.com/in")),
    ],
)  # fmt: skip
def test_different_pairs_are_kept_apart(
    store: DeadLetterStore,
    first: tuple[str, str, str | None],
    second: tuple[str, str, str | None],
) -> None:
    add(store, *first)
    add(store, *second)

    assert len(store) == 2
    assert [(e["event_id"], e["stage"], e["target"]) for e in store.list()] == [first, second]


def test_stores_share_one_redis(store: DeadLetterStore, redis_url: str) -> None:
    add(store, "evt_a")
    other = redis.Redis.from_url(redis_url)

    try:
        assert len(DeadLetterStore(other)) == 1
        assert DeadLetterStore(other).list()[0]["event_id"] == "evt_a"
    finally:
        other.close()
