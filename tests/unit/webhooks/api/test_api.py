"""The read API with Flask's test client, over a SQLite store and the private Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from schemas.settings import ConfigurationError
from tests.support.databases import MakeDatabase
from tests.support.twilio import sid
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import assert_problem
from tests.unit.workers.store_events import T0, Room
from webhooks.api.views import api_state
from workers.metadata import Store
from workers.metadata.migrate import upgrade
from workers.state.keys import ARCHIVES_KEY
from workers.state.outcomes import OutcomeStore

TOKEN = "api-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store the tests write to; the app reads the same file."""
    store = Store.open(f"sqlite:///{tmp_path}/roomrec.db")
    upgrade(store.engine)
    yield store
    store.close()


@pytest.fixture
def make_api(make_app: AppFactory, database: Store, tmp_path: Path) -> Iterator[AppFactory]:
    apps: list[Flask] = []

    def make(**env: str | None) -> Flask:
        config: dict[str, str | None] = {
            "DATABASE_URL": str(database.engine.url), "API_TOKEN": TOKEN,
            "SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        }  # fmt: skip
        app = make_app(**(config | env))
        apps.append(app)
        return app

    yield make
    for app in apps:
        api_state(app).close()


@pytest.fixture
def api(make_api: AppFactory) -> FlaskClient:
    return make_api().test_client()


def body(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    loaded: dict[str, Any] = json.loads(response.get_data())
    return loaded


def add_recordings(store: Store, count: int, room: Room | None = None) -> list[str]:
    room = room or Room()
    sids = []
    for index in range(count):
        rt = sid("RT")
        created = (T0 + timedelta(hours=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
        store.apply(room.recording("recording-completed", rt, index, date_created=created,
                                   type="audio" if index % 2 else "video"))  # fmt: skip
        sids.append(rt)
    return sids


# --- authentication ----------------------------------------------------------------------------


def test_without_api_token_the_api_does_not_exist(make_api: AppFactory) -> None:
    client = make_api(API_TOKEN=None).test_client()
    for path in ("/recordings", f"/recordings/{sid('RT')}"):
        assert_problem(client.get(path, headers=AUTH), 404)
        assert_problem(client.get(path), 404)


@pytest.mark.parametrize(
    ("headers", "invalid"),
    [
        ({}, False),
        ({"Authorization": TOKEN}, False),
        ({"Authorization": f"Basic {TOKEN}"}, False),
        ({"Authorization": "Bearer "}, False),
        ({"Authorization": "Bearer not-the-token-at-all-0000"}, True),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, True),
        ({"Authorization": f"Bearer {TOKEN}x"}, True),
        ({"Authorization": "Bearer t\u00e9st"}, True),
    ],
)
def test_requests_without_the_bearer_token_are_refused(
    api: FlaskClient, headers: dict[str, str], invalid: bool
) -> None:
    for path in ("/recordings", f"/recordings/{sid('RT')}"):
        response = api.get(path, headers=headers)
        assert_problem(response, 401)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert ('error="invalid_token"' in challenge) is invalid
        assert TOKEN not in response.get_data(as_text=True)


def test_the_scheme_is_case_insensitive(api: FlaskClient) -> None:
    assert api.get("/recordings", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


# --- GET /recordings ---------------------------------------------------------------------------


def test_an_empty_store_lists_nothing(api: FlaskClient) -> None:
    assert body(api.get("/recordings", headers=AUTH)) == {"recordings": [], "next": None}


def test_pages_follow_next_links_until_the_last(api: FlaskClient, database: Store) -> None:
    sids = add_recordings(database, 5)
    seen: list[str] = []
    url: str | None = "/recordings?limit=2"
    links = []
    while url:
        response = api.get(url, headers=AUTH)
        page = body(response)
        seen += [r["sid"] for r in page["recordings"]]
        links.append(response.headers.get("Link"))
        url = page["next"]
        if url:
            assert "limit=2" in url and "cursor=" in url
            assert response.headers["Link"] == f'<{url}>; rel="next"'
    assert seen == list(reversed(sids))  # newest first, each once
    assert links[-1] is None and len(links) == 3


def test_a_listed_recording(api: FlaskClient, database: Store) -> None:
    (rt,) = add_recordings(database, 1)

    (listed,) = body(api.get("/recordings", headers=AUTH))["recordings"]

    assert listed["sid"] == rt and listed["status"] == "completed"
    assert listed["date_created"] == "2026-03-01T12:00:00Z"
    assert listed["codec"] == "VP8" and listed["size"] == 105956
    assert "raw" not in listed and "resource" not in listed


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=audio", [1, 3]),
        ("type=VIDEO", [0, 2]),
        ("status=completed", [0, 1, 2, 3]),
        ("status=failed", []),
        ("date_created_after=2026-03-01T13:00:00Z", [1, 2, 3]),
        ("date_created_before=2026-03-01T14:00:00%2B00:00", [0, 1]),
        ("date_created_after=2026-03-01T13:00:00&date_created_before=2026-03-01T15:00:00", [1, 2]),
        ("date_created_after=2026-03-02", []),
        ("date_created_before=2026-03-02", [0, 1, 2, 3]),
    ],
)
def test_filters(api: FlaskClient, database: Store, query: str, expected: list[int]) -> None:
    sids = add_recordings(database, 4)
    listed = body(api.get(f"/recordings?{query}", headers=AUTH))["recordings"]
    assert sorted(r["sid"] for r in listed) == sorted(sids[i] for i in expected)


def test_filter_by_room(api: FlaskClient, database: Store) -> None:
    mine, theirs = Room(), Room()
    sids = add_recordings(database, 2, mine)
    add_recordings(database, 2, theirs)
    listed = body(api.get(f"/recordings?room={mine.sid}", headers=AUTH))["recordings"]
    assert sorted(r["sid"] for r in listed) == sorted(sids)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("status=recording", "status"),
        ("type=screen", "type"),
        ("room=RT00000000000000000000000000000000", "room"),
        ("room=nope", "room"),
        ("date_created_after=yesterday", "date_created_after"),
        ("date_created_after=2026-03-02&date_created_before=2026-03-01", "date_created_before"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=WyJ4Il0", "cursor"),  # base64 of ["x"]
        ("sort=asc", "sort"),
        ("status=completed&status=failed", "status"),
    ],
)
def test_bad_filters_are_refused_naming_them(api: FlaskClient, query: str, named: str) -> None:
    problem = assert_problem(api.get(f"/recordings?{query}", headers=AUTH), 400)
    assert list(problem["errors"]) == [named]
    assert named in problem["detail"]


# --- GET /recordings/{sid} ---------------------------------------------------------------------


def test_one_recording_with_events_outcomes_and_archive(
    api: FlaskClient, database: Store, redis_url: str
) -> None:
    room, rt = Room(), sid("RT")
    completed = room.recording("recording-completed", rt, 60)
    started = room.recording("recording-started", rt, 1, status="processing")
    for event in (room.event("room-created", 0), completed, started):
        database.apply(event)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        outcomes = OutcomeStore(client, ttl=3600)
        outcomes.record(started.id, "store", None, "succeeded", attempts=1)
        outcomes.record(completed.id, "forward", "https://hooks.example/in?token=s3cret",
                        "retrying", attempts=2, error="503")  # fmt: skip
        archive = {"location": f"s3://bucket/{rt}.mkv", "size": 105956,
                   "archived_at": "2026-03-01T12:05:00Z"}  # fmt: skip
        client.hset(ARCHIVES_KEY, rt, json.dumps(archive))
    finally:
        client.close()

    detail = body(api.get(f"/recordings/{rt}", headers=AUTH))

    assert completed.recording is not None
    assert detail["sid"] == rt and detail["status"] == "completed"
    assert detail["resource"] == completed.recording.raw
    assert detail["room"]["sid"] == room.sid and detail["room"]["status"] == "in-progress"
    assert [e["id"] for e in detail["events"]] == [started.id, completed.id]
    first, last = detail["events"]
    assert first["type"] == "recording.started" and first["timestamp"] == "2026-03-01T12:00:01Z"
    assert first["params"] == started.event.to_json()
    assert [(o["handler"], o["status"]) for o in first["outcomes"]] == [("store", "succeeded")]
    assert [(o["handler"], o["status"], o["attempts"]) for o in last["outcomes"]] == [
        ("forward", "retrying", 2)
    ]
    assert "s3cret" not in json.dumps(detail)
    assert detail["archive"] == archive


@pytest.mark.parametrize("stored", [None, "not json", "[1, 2]", '"text"'])
def test_a_missing_or_unreadable_archive_is_null(
    api: FlaskClient, database: Store, redis_url: str, stored: str | None
) -> None:
    (rt,) = add_recordings(database, 1)
    if stored is not None:
        client = redis.Redis.from_url(redis_url)
        client.hset(ARCHIVES_KEY, rt, stored)
        client.close()

    detail = body(api.get(f"/recordings/{rt}", headers=AUTH))

    assert detail["archive"] is None
    assert [e["outcomes"] for e in detail["events"]] == [[]]


@pytest.mark.parametrize("path", [f"/recordings/{sid('RT')}", "/recordings/nope",
                                  f"/recordings/{sid('RM')}"])  # fmt: skip
def test_an_unknown_recording_is_404(api: FlaskClient, database: Store, path: str) -> None:
    add_recordings(database, 1)
    problem = assert_problem(api.get(path, headers=AUTH), 404)
    assert problem["type"].endswith("/recording-not-found")


# --- what the API depends on fails -------------------------------------------------------------


def test_a_hung_redis_is_a_quick_503(make_api: AppFactory, database: Store, hung_url: str) -> None:
    (rt,) = add_recordings(database, 1)
    client = make_api(REDIS_URL=hung_url, ENQUEUE_TIMEOUT="0.3").test_client()

    started = time.monotonic()
    response = client.get(f"/recordings/{rt}", headers=AUTH)

    assert time.monotonic() - started < 3
    assert_problem(response, 503)
    assert response.headers["Retry-After"]


def test_an_unmigrated_database_is_503(make_api: AppFactory, empty_database: MakeDatabase) -> None:
    with empty_database("postgresql") as url:
        client = make_api(DATABASE_URL=url).test_client()
        problem = assert_problem(client.get("/recordings", headers=AUTH), 503)
    assert "migrated" in problem["detail"]


def test_an_unreachable_database_is_503(make_api: AppFactory) -> None:
    url = "postgresql://roomrec:s3cret@127.0.0.1:1/roomrec"
    response = make_api(DATABASE_URL=url).test_client().get("/recordings", headers=AUTH)
    assert_problem(response, 503)
    assert "s3cret" not in response.get_data(as_text=True)


def test_a_sqlite_database_is_migrated_on_first_use(make_api: AppFactory, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh/roomrec.db"
    client = make_api(DATABASE_URL=url).test_client()
    assert body(client.get("/recordings", headers=AUTH))["recordings"] == []


def test_creating_the_app_touches_no_database(make_api: AppFactory, tmp_path: Path) -> None:
    make_api(DATABASE_URL=f"sqlite:///{tmp_path}/untouched/roomrec.db")
    assert not (tmp_path / "untouched").exists()


def test_a_short_api_token_stops_the_web_naming_it(make_api: AppFactory) -> None:
    with pytest.raises(ConfigurationError, match="API_TOKEN"):
        make_api(API_TOKEN="short")
