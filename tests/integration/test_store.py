"""The ``store`` and ``stream`` handlers over the real stack: a simulated room's callbacks in;
rows in the database, entries on the Redis stream, each event once; the read API over
gunicorn answers from them."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from devtools.processes import gunicorn_web
from devtools.redis_server import free_port
from emulator.client import RoomSimulator, SimulatedRoom
from tests.integration.conftest import Stack, wait_for
from tests.support.databases import BACKENDS, MakeDatabase
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN
from workers.delivery.dedup import event_id
from workers.metadata.engine import make_engine
from workers.metadata.migrate import upgrade
from workers.metadata.repository import EVENTS, RECORDINGS, ROOMS
from workers.pipeline.rooms import ready_event_id
from workers.state.outcomes import outcomes_of

STREAM = "roomrec:events"
API_TOKEN = "integration-api-token-0123456789"


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, empty_database: MakeDatabase
) -> Iterator[str]:
    """SQLite is left empty (the worker migrates it); PostgreSQL is migrated first, as an
    operator would with ``flask --app webhooks db upgrade``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/db.sqlite"
        return
    with empty_database("postgresql") as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url


def table(url: str, name: str) -> list[dict[str, Any]]:
    tables = {"rooms": ROOMS, "recordings": RECORDINGS, "events": EVENTS}
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(select(tables[name])).mappings()]
    finally:
        engine.dispose()


def stream_ids(stack: Stack) -> Counter[str]:
    return Counter(fields["id"] for _, fields in stack.redis.xrange(STREAM))


def play(stack: Stack, twilio: Any) -> SimulatedRoom:
    simulator = RoomSimulator(twilio.control, stack.callback_url, ACCOUNT_SID, AUTH_TOKEN,
                              rng=random.Random(21))  # fmt: skip
    room = simulator.play(participants=3)
    assert {sent.status for sent in room.callbacks} == {204}
    return room


def test_a_room_is_stored_and_streamed_once_each(start_stack, twilio, db_url, tmp_path):
    stack = start_stack(HANDLERS="store,stream", DATABASE_URL=db_url)
    room = play(stack, twilio)
    callbacks = Counter(event_id(sent.params) for sent in room.callbacks)
    assert set(callbacks.values()) == {1}
    expected = callbacks + Counter([ready_event_id(room.room_sid)])  # and the ready event

    def all_done() -> bool:
        return all(
            {(o["handler"], o["status"]) for o in outcomes_of(stack.redis, eid)}
            == {("store", "succeeded"), ("stream", "succeeded")}
            for eid in expected
        )

    wait_for(all_done, 90, f"store and stream succeeded for {len(expected)} events")

    # Every event again, as if redelivered: done marks and de-duplication marks cleared.
    for pattern in ("roomrec:done:*", "roomrec:seen:*"):
        for key in stack.redis.scan_iter(pattern):
            stack.redis.delete(key)
    simulator = RoomSimulator(twilio.control, stack.callback_url, ACCOUNT_SID, AUTH_TOKEN,
                              rng=random.Random(0))  # fmt: skip
    assert {simulator.send(sent.params, sync_emulator=False).status
            for sent in room.callbacks} == {204}  # fmt: skip
    wait_for(lambda: len(stack.redis.keys("roomrec:done:*")) >= 2 * len(callbacks), 90,
             "the events handled a second time")  # fmt: skip
    stack.worker.wait_for_log("already stored")
    stack.worker.wait_for_log("already on the stream")

    assert stream_ids(stack) == expected  # each event once on the stream, the room ready once
    events = table(db_url, "events")
    assert Counter(e["id"] for e in events) == expected  # each event once in the database
    recordings = {r["sid"]: r for r in table(db_url, "recordings")}
    assert set(recordings) == {r.sid for r in room.recordings}
    assert {r["status"] for r in recordings.values()} == {"completed"}
    assert all(r["raw"]["status"] == "completed" for r in recordings.values())
    (stored_room,) = table(db_url, "rooms")
    assert stored_room["sid"] == room.room_sid and stored_room["status"] == "completed"
    assert stored_room["created_at"] is not None and stored_room["ended_at"] is not None
    assert stack.dead_letters() == []

    check_the_api(stack, db_url, tmp_path, room)


def check_the_api(stack: Stack, db_url: str, tmp_path: Path, room: SimulatedRoom) -> None:
    """A gunicorn web of our own, with the database and an API token."""
    port = free_port()
    redis_url = stack.worker_config["REDIS_URL"]
    web = gunicorn_web(
        {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url, "DATABASE_URL": db_url,
         "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "API_TOKEN": API_TOKEN,
         "SPOOL_PATH": str(tmp_path / "api-spool.sqlite3")},
        tmp_path / "api-web.log", port, workers=2,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    try:
        refused = requests.get(f"{base}/recordings", timeout=5)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"]

        listed: list[dict[str, Any]] = []
        url: str | None = f"{base}/recordings?room={room.room_sid}&limit=2"
        while url:
            page = requests.get(url, headers=auth, timeout=5)
            assert page.status_code == 200, page.text
            listed += page.json()["recordings"]
            url = base + page.json()["next"] if page.json()["next"] else None
        assert sorted(r["sid"] for r in listed) == sorted(r.sid for r in room.recordings)
        assert {r["status"] for r in listed} == {"completed"}

        rt = room.recordings[0].sid
        detail = requests.get(f"{base}/recordings/{rt}", headers=auth, timeout=5).json()
        assert [e["type"] for e in detail["events"]] == ["recording.started",
                                                          "recording.completed"]  # fmt: skip
        for event in detail["events"]:
            assert {(o["handler"], o["status"]) for o in event["outcomes"]} == {
                ("store", "succeeded"),
                ("stream", "succeeded"),
            }
        assert detail["resource"]["sid"] == rt and detail["archive"] is None
    finally:
        web.stop()
