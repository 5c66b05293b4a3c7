"""``flask recordings fetch|replay`` and ``flask reconcile`` against the real Twilio emulator,
queueing into the private Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from emulator.client import EmulatorProcess
from tests.support.queues import task_messages
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, sid
from tests.unit.webhooks.cli_helpers import TARGET, invoke, json_out, worker_env
from tests.unit.webhooks.conftest import AppFactory
from workers.state.keys import SEEN_KEY, done_key


@pytest.fixture
def env(twilio: EmulatorProcess, redis_url: str) -> dict[str, str | None]:
    return worker_env(redis_url, TWILIO_VIDEO_BASE_URL=twilio.url)


def create(twilio: EmulatorProcess, status: str = "completed", age: float = 60) -> str:
    created = (datetime.now(UTC) - timedelta(seconds=age)).isoformat()
    body = twilio.control.create_recording(
        room_sid=sid("RM"), status=status, date_created=created, type="audio", size=4096,
        duration=7,
    )  # fmt: skip
    return str(body["sid"])


def events(redis_url: str) -> list[dict[str, Any]]:
    return [message["args"][0] for message in task_messages(redis_url, "roomrec.events")]


# --- fetch --------------------------------------------------------------------------------


def test_fetch_prints_the_recording(app: Flask, twilio: EmulatorProcess, env: Any) -> None:
    recording = create(twilio)
    served = requests.get(f"{twilio.url}/v1/Recordings/{recording}",
                          auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).json()  # fmt: skip

    human = invoke(app, "recordings", "fetch", recording, env=env)
    document = json_out(invoke(app, "recordings", "fetch", recording, "--json", env=env))

    assert human.exit_code == 0, human.output
    assert f"sid: {recording}" in human.stdout and "status: completed" in human.stdout
    assert f"room_sid: {served['grouping_sids']['room_sid']}" in human.stdout
    assert document == served


def test_fetch_of_an_unknown_recording_fails(app: Flask, twilio: EmulatorProcess,
                                             env: Any) -> None:  # fmt: skip
    result = invoke(app, "recordings", "fetch", sid("RT"), env=env)

    assert result.exit_code == 1
    assert "Twilio answered 404" in result.stderr


@pytest.mark.parametrize("command", ["fetch", "replay"])
def test_a_sid_that_is_no_recording_is_a_usage_error(app: Flask, env: Any, command: str) -> None:
    result = invoke(app, "recordings", command, sid("RM"), env=env)

    assert result.exit_code == 2
    assert "not a recording SID" in result.stderr


@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"])
def test_fetch_names_a_missing_variable(app: Flask, env: Any, missing: str) -> None:
    result = invoke(app, "recordings", "fetch", sid("RT"), env=env | {missing: None})

    assert result.exit_code == 2
    assert missing in result.stderr


# --- replay -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event"), [("completed", "recording-completed"), ("failed", "recording-failed")]
)
def test_replay_queues_the_final_event(
    app: Flask, twilio: EmulatorProcess, env: Any, redis_url: str, status: str, event: str
) -> None:
    recording = create(twilio, status)

    result = invoke(app, "recordings", "replay", recording, "--json", env=env)

    assert result.exit_code == 0, result.output
    [done] = json_out(result)["replayed"]
    [queued] = events(redis_url)
    assert queued["id"] == done["id"] and done["event"] == event
    assert queued["params"]["RecordingSid"] == recording
    assert queued["params"]["StatusCallbackEvent"] == event
    assert queued["params"]["RoomrecSource"] == "replay"
    client = redis.Redis.from_url(redis_url)
    assert client.exists(SEEN_KEY.format(done["id"])) == 1
    client.close()


@pytest.mark.parametrize("force", [False, True])
def test_force_clears_the_done_marks(app: Flask, twilio: EmulatorProcess, env: Any,
                                     redis_url: str, force: bool) -> None:  # fmt: skip
    recording = create(twilio)
    first = json_out(invoke(app, "recordings", "replay", recording, "--json", env=env))
    event_id = first["replayed"][0]["id"]
    client = redis.Redis.from_url(redis_url)
    marks = [done_key(event_id, "log", None), done_key(event_id, "forward", TARGET)]
    client.set(marks[0], 1)
    client.set(marks[1], 1)

    args = ["--force"] if force else []
    again = invoke(app, "recordings", "replay", recording, *args, env=env)

    assert again.exit_code == 0
    assert client.exists(*marks) == (0 if force else 2)
    assert ("2 done mark(s) cleared" in again.stdout) is force
    assert [m["id"] for m in events(redis_url)] == [event_id, event_id]
    client.close()


def test_replay_reports_each_recording(app: Flask, twilio: EmulatorProcess, env: Any,
                                       redis_url: str) -> None:  # fmt: skip
    good, busy, unknown = create(twilio), create(twilio, "processing"), sid("RT")

    result = invoke(app, "recordings", "replay", good, busy, unknown, "--json", env=env)

    assert result.exit_code == 1
    document = json_out(result)
    assert [done["recording_sid"] for done in document["replayed"]] == [good]
    failed = {problem["recording_sid"]: problem["error"] for problem in document["failed"]}
    assert "is processing" in failed[busy] and "404" in failed[unknown]
    assert len(events(redis_url)) == 1


# --- reconcile ----------------------------------------------------------------------------


def test_reconcile_queues_what_was_never_processed(app: Flask, twilio: EmulatorProcess,
                                                   env: Any, redis_url: str) -> None:  # fmt: skip
    recent = [create(twilio), create(twilio, "failed"), create(twilio, "processing")]
    old = create(twilio, age=5 * 3600)

    first = invoke(app, "reconcile", "--since", "1h", "--json", env=env)
    second = invoke(app, "reconcile", "--since", "1h", env=env)

    assert first.exit_code == 0, first.output
    document = json_out(first)
    assert (document["listed"], document["enqueued"], document["skipped"]) == (3, 2, 1)
    assert sorted(document["queued"]) == sorted(recent[:2]) and old not in document["queued"]
    assert second.exit_code == 0
    assert "3 recording(s) created since" in second.stdout
    assert "0 queued, 2 already processed, 1 skipped" in second.stdout
    assert {e["params"]["RoomrecSource"] for e in events(redis_url)} == {"reconcile"}
    assert len(events(redis_url)) == 2


@pytest.mark.parametrize(("window", "listed"), [("3600", 0), ("21600", 1)])
def test_reconcile_defaults_to_the_window(app: Flask, twilio: EmulatorProcess, env: Any,
                                          window: str, listed: int) -> None:  # fmt: skip
    create(twilio, age=3 * 3600)

    result = invoke(app, "reconcile", "--json", env=env | {"RECONCILE_WINDOW": window})

    assert result.exit_code == 0, result.output
    assert json_out(result)["listed"] == listed


@pytest.mark.parametrize("args", [["--since", "yesterday"], ["--since", "1h", "--until", "2h"]])
def test_reconcile_refuses_a_bad_window(app: Flask, env: Any, args: list[str]) -> None:
    result = invoke(app, "reconcile", *args, env=env)

    assert result.exit_code == 2


def test_reconcile_warns_beyond_the_de_duplication_memory(app: Flask, twilio: EmulatorProcess,
                                                          env: Any) -> None:  # fmt: skip
    result = invoke(app, "reconcile", "--since", "8d", env=env)

    assert result.exit_code == 0
    assert "processed again" in result.stderr


def test_reconcile_reports_twilios_error(app: Flask, twilio: EmulatorProcess, env: Any,
                                         redis_url: str) -> None:  # fmt: skip
    create(twilio)
    twilio.control.add_fault("^/v1/Recordings$", "status", status=401)

    result = invoke(app, "reconcile", "--since", "1h", env=env)

    assert result.exit_code == 1
    assert "Twilio answered 401" in result.stderr
    assert events(redis_url) == []


@pytest.mark.parametrize("command", ["replay", "reconcile"])
def test_marks_last_as_long_as_the_webs(make_app: AppFactory, twilio: EmulatorProcess, env: Any,
                                        redis_url: str, command: str) -> None:  # fmt: skip
    recording = create(twilio)
    app = make_app(DEDUP_TTL="600", CALLBACK_MAX_AGE="240")  # the window within DEDUP_TTL
    args = [recording] if command == "replay" else ["--since", "1h"]

    result = invoke(app, *(["recordings"] if command == "replay" else []), command, *args,
                    env=env)  # fmt: skip

    assert result.exit_code == 0, result.output
    client = redis.Redis.from_url(redis_url)
    [mark] = client.keys(SEEN_KEY.format("*"))
    assert 0 < client.ttl(mark) <= 600
    client.close()
