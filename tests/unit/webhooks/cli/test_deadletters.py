"""``flask dead-letters …`` through Flask's CLI runner, on the private Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from tests.support.queues import task_messages
from tests.unit.webhooks.cli_helpers import TARGET, invoke, json_out, worker_env
from tests.unit.webhooks.conftest import AppFactory
from workers.observability.redaction import target_label
from workers.state.deadletters import DeadLetterStore


@pytest.fixture
def store(redis_url: str) -> Iterator[DeadLetterStore]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield DeadLetterStore(client)
    client.close()


def add(store: DeadLetterStore, event_id: str, stage: str = "handler:forward",
        target: str | None = TARGET) -> dict[str, Any]:  # fmt: skip
    entry_id = store.add(
        event_id=event_id, stage=stage, target=target_label(target), attempts=5,
        error="forward to https://hooks.example.com/in answered 400",
        message={"v": 1, "id": event_id, "params": {"RoomSid": "RM1"}},
    )  # fmt: skip
    entry = store.get(entry_id)
    assert entry is not None
    return entry


# --- list and show ------------------------------------------------------------------------


def test_an_empty_list(app: Flask) -> None:
    assert invoke(app, "dead-letters", "list").stdout == "0 dead letter(s).\n"
    assert json_out(invoke(app, "dead-letters", "list", "--json")) == []


def test_list_shows_each_entry(app: Flask, store: DeadLetterStore) -> None:
    first, second = add(store, "evt_a"), add(store, "evt_b", "fetch", None)

    human = invoke(app, "dead-letters", "list")
    document = json_out(invoke(app, "dead-letters", "list", "--json"))

    assert human.exit_code == 0
    assert human.stdout.startswith("2 dead letter(s):")
    assert first["id"] in human.stdout and second["id"] in human.stdout
    assert "answered 400" in human.stdout and "s3cr3t" not in human.stdout
    assert document == [first, second]


@pytest.mark.parametrize("name", ["evt_abc", "evt_abc:handler:forward", "full"])
def test_show_finds_an_entry_by_id_or_prefix(app: Flask, store: DeadLetterStore,
                                             name: str) -> None:  # fmt: skip
    entry = add(store, "evt_abc")
    add(store, "evt_xyz")
    text = entry["id"] if name == "full" else name

    human = invoke(app, "dead-letters", "show", text)
    document = json_out(invoke(app, "dead-letters", "show", text, "--json"))

    assert human.exit_code == 0
    assert f"id: {entry['id']}" in human.stdout and '"RoomSid": "RM1"' in human.stdout
    assert document == entry


@pytest.mark.parametrize(("name", "says"), [("evt_nope", "no dead letter"), ("evt_", "names 2")])
def test_show_needs_exactly_one_entry(app: Flask, store: DeadLetterStore, name: str,
                                      says: str) -> None:  # fmt: skip
    add(store, "evt_a")
    add(store, "evt_b")

    result = invoke(app, "dead-letters", "show", name)

    assert result.exit_code == 1
    assert says in result.stderr


def test_an_unreachable_redis_is_one_line(make_app: AppFactory, closed_url: str) -> None:
    result = invoke(make_app(REDIS_URL=closed_url), "dead-letters", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Redis unavailable")


# --- purge --------------------------------------------------------------------------------


def test_purge_one(app: Flask, store: DeadLetterStore) -> None:
    add(store, "evt_a")
    kept = add(store, "evt_b")

    result = invoke(app, "dead-letters", "purge", "evt_a", "--yes", "--json")

    assert result.exit_code == 0 and json_out(result) == {"purged": 1}
    assert store.list() == [kept]


def test_purge_all(app: Flask, store: DeadLetterStore) -> None:
    for name in ("evt_a", "evt_b", "evt_c"):
        add(store, name)

    result = invoke(app, "dead-letters", "purge", "--all", "--yes")

    assert result.exit_code == 0 and result.stdout == "purged 3 dead letter(s)\n"
    assert store.list() == []


@pytest.mark.parametrize(("answer", "left"), [("n\n", 1), ("y\n", 0)])
def test_purge_asks_without_yes(app: Flask, store: DeadLetterStore, answer: str,
                                left: int) -> None:  # fmt: skip
    add(store, "evt_a")

    result = invoke(app, "dead-letters", "purge", "--all", input=answer)

    assert result.exit_code == (1 if left else 0)
    assert len(store) == left


@pytest.mark.parametrize("args", [[], ["evt_a", "--all"]])
@pytest.mark.parametrize("command", ["purge", "replay"])
def test_one_id_or_all_is_required(app: Flask, store: DeadLetterStore, redis_url: str,
                                   command: str, args: list[str]) -> None:  # fmt: skip
    add(store, "evt_a")

    result = invoke(
        app,
        "dead-letters",
        command,
        *args,
        "--yes" if command == "purge" else "--json",
        env=worker_env(redis_url),
    )

    assert result.exit_code == 2
    assert "one ID or --all" in result.stderr
    assert len(store) == 1


# --- replay -------------------------------------------------------------------------------


def test_replay_queues_the_failed_handler_with_its_real_target(
    app: Flask, store: DeadLetterStore, redis_url: str
) -> None:
    entry = add(store, "evt_a")

    result = invoke(app, "dead-letters", "replay", "evt_a", "--json", env=worker_env(redis_url))

    assert result.exit_code == 0, result.output
    [replayed] = json_out(result)["replayed"]
    assert replayed["id"] == entry["id"] and replayed["task"] == "roomrec.run_handler"
    [queued] = task_messages(redis_url, "roomrec.handlers")
    assert queued["args"] == ["forward", TARGET, entry["message"]]
    assert queued["id"] == replayed["task_id"]
    assert store.list() == []
    assert "s3cr3t" not in result.output


def test_replay_all_reports_what_cannot_be_replayed(
    app: Flask, store: DeadLetterStore, redis_url: str
) -> None:
    add(store, "evt_a")
    add(store, "evt_b", "fetch", None)
    broken = add(store, "evt_c", "validate", None)
    gone = add(store, "evt_d", target="https://removed.example.com/in")

    result = invoke(app, "dead-letters", "replay", "--all", env=worker_env(redis_url))

    assert result.exit_code == 1
    assert result.stdout.count("replayed ") == 2
    assert f"not replayed {broken['id']}" in result.stderr
    assert "https://removed.example.com/in of 'forward' is no longer configured" in result.stderr
    assert store.list() == [broken, gone]
    assert len(task_messages(redis_url, "roomrec.handlers")) == 1
    assert len(task_messages(redis_url, "roomrec.events")) == 1


def test_replay_needs_the_workers_settings(app: Flask, store: DeadLetterStore,
                                           redis_url: str) -> None:  # fmt: skip
    add(store, "evt_a")

    result = invoke(app, "dead-letters", "replay", "evt_a",
                    env=worker_env(redis_url, TWILIO_ACCOUNT_SID=None))  # fmt: skip

    assert result.exit_code == 2
    assert "TWILIO_ACCOUNT_SID" in result.stderr
    assert len(store) == 1


def test_replaying_what_is_gone_fails(app: Flask, store: DeadLetterStore, redis_url: str) -> None:
    add(store, "evt_a")
    env = worker_env(redis_url)
    assert invoke(app, "dead-letters", "replay", "evt_a", env=env).exit_code == 0

    again = invoke(app, "dead-letters", "replay", "evt_a", env=env)

    assert again.exit_code == 1 and "no dead letter 'evt_a'" in again.stderr
    assert len(task_messages(redis_url, "roomrec.handlers")) == 1
