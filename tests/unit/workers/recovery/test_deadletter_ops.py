from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from workers.state.deadletters import DeadLetterStore


@pytest.fixture(params=[True, False], ids=["decoded", "bytes"])
def store(request: pytest.FixtureRequest, redis_url: str) -> Iterator[DeadLetterStore]:
    client = redis.Redis.from_url(redis_url, decode_responses=request.param)
    yield DeadLetterStore(client)
    client.close()


def add(store: DeadLetterStore, event_id: str, stage: str = "fetch", error: str = "boom") -> str:
    return store.add(
        event_id=event_id, stage=stage, target=None, attempts=1, error=error,
        message={"v": 1, "id": event_id},
    )  # fmt: skip


def test_get_returns_the_entry_or_none(store: DeadLetterStore) -> None:
    entry_id = add(store, "evt_a")

    entry = store.get(entry_id)
    assert entry is not None and entry["event_id"] == "evt_a" and entry["id"] == entry_id
    assert store.get("evt_nope:fetch") is None


def test_ids_are_in_order_of_failure(store: DeadLetterStore) -> None:
    ids = [add(store, name) for name in ("evt_c", "evt_a", "evt_b")]

    assert store.ids() == ids
    assert all(isinstance(entry_id, str) for entry_id in store.ids())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("evt_abc:fetch", ["evt_abc:fetch"]), ("evt_abc", ["evt_abc:fetch"]),
     ("evt_ab", ["evt_abc:fetch", "evt_abd:fetch"]), ("evt_x", []), ("", ["evt_abc:fetch",
     "evt_abd:fetch", "evt_b:handler:log"])],
)  # fmt: skip
def test_find_by_id_or_prefix(store: DeadLetterStore, text: str, expected: list[str]) -> None:
    add(store, "evt_abc")
    add(store, "evt_abd")
    add(store, "evt_b", "handler:log")

    assert store.find(text) == expected


def test_an_exact_id_wins_over_longer_ones_it_starts(store: DeadLetterStore) -> None:
    add(store, "evt_a")  # evt_a:fetch
    store.add(event_id="evt_a", stage="fetch", target="x", attempts=1, error="e", message={})

    assert store.find("evt_a:fetch") == ["evt_a:fetch"]


def test_remove_deletes_one_entry(store: DeadLetterStore) -> None:
    first, second = add(store, "evt_a"), add(store, "evt_b")

    assert store.remove(first) is True
    assert store.remove(first) is False
    assert store.ids() == [second]
    assert len(store) == 1


def test_remove_keeps_an_entry_that_failed_again(store: DeadLetterStore) -> None:
    entry_id = add(store, "evt_a", error="first")
    seen = store.get(entry_id)
    assert seen is not None
    add(store, "evt_a", error="again")  # replayed, failed anew: a new failure

    assert store.remove(entry_id, failed_at=seen["failed_at"]) is False
    kept = store.get(entry_id)
    assert kept is not None and kept["error"] == "again"
    assert store.remove(entry_id, failed_at=kept["failed_at"]) is True
    assert store.list() == []


def test_purge_deletes_everything_and_counts(store: DeadLetterStore) -> None:
    for name in ("evt_a", "evt_b", "evt_c"):
        add(store, name)

    assert store.purge() == 3
    assert store.list() == [] and store.ids() == [] and len(store) == 0
    assert store.purge() == 0
