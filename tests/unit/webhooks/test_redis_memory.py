"""A Redis that would lose data: the web warns about an evicting maxmemory-policy at start-up
and on /readyz, and a Redis answering OOM gets the callback spooled, never a 500."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.redis_server import RedisServer
from tests.support.redis_memory import fill_to_oom, redis_without_config, set_policy
from tests.support.twilio import recording_params, room_params
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import post_callback, queued, seen_marks
from webhooks.intake.state import intake_state


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis")
    started.start()
    yield started
    started.stop()


def _policy_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "maxmemory-policy" in r.getMessage()
    ]


def _wait_for_policy_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    deadline = time.monotonic() + 5
    while not _policy_warnings(caplog) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _policy_warnings(caplog)


def test_an_evicting_redis_is_warned_about_at_start_up_and_on_readyz(
    make_app: AppFactory, server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    set_policy(server, "allkeys-lru")
    caplog.set_level(logging.INFO)

    app = make_app(REDIS_URL=server.url)

    (warning,) = _wait_for_policy_warnings(caplog)  # at start-up, before any request
    assert "'allkeys-lru'" in warning and "'noeviction'" in warning
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "maxmemory_policy": {"REDIS_URL": "allkeys-lru"},
        "warnings": [warning],
    }
    assert len(_policy_warnings(caplog)) == 1  # cached, and warned once


def test_a_separate_redis_broker_is_checked_too(
    make_app: AppFactory, server: RedisServer, redis_url: str
) -> None:
    set_policy(server, "volatile-ttl")
    app = make_app(CELERY_BROKER_URL=server.url)
    body = app.test_client().get("/readyz").get_json()
    assert body["maxmemory_policy"] == {
        "REDIS_URL": "noeviction",
        "CELERY_BROKER_URL": "volatile-ttl",
    }
    assert len(body["warnings"]) == 1 and "CELERY_BROKER_URL" in body["warnings"][0]


def test_a_managed_redis_without_config_is_read_through_info(
    make_app: AppFactory, tmp_path: Path
) -> None:
    with redis_without_config(tmp_path / "managed", "allkeys-lru") as port:
        app = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0")
        body = app.test_client().get("/readyz").get_json()
    assert body["maxmemory_policy"] == {"REDIS_URL": "allkeys-lru"}
    assert body["warnings"]


def test_the_web_starts_while_redis_is_down_and_warns_once_it_answers(
    make_app: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    later = RedisServer(tmp_path / "later")
    app = make_app(REDIS_URL=later.url)  # no exception: Redis is down
    time.sleep(0.2)  # the start-up read (in its thread) finds it down
    assert post_callback(app.test_client(), room_params()).headers["X-Roomrec-Spooled"] == "1"
    assert _policy_warnings(caplog) == []
    later.start()
    try:
        set_policy(later, "allkeys-lru")
        body = app.test_client().get("/readyz").get_json()
        assert body["maxmemory_policy"] == {"REDIS_URL": "allkeys-lru"}
        assert len(_policy_warnings(caplog)) == 1
    finally:
        intake_state(app).relay.stop()
        later.stop()


@pytest.mark.parametrize("broker_db", [None, "1"], ids=["lua-enqueue", "two-step-enqueue"])
def test_a_callback_while_redis_answers_oom_is_spooled_not_a_500(
    make_app: AppFactory, server: RedisServer, broker_db: str | None
) -> None:
    broker = None if broker_db is None else server.url.rsplit("/", 1)[0] + "/" + broker_db
    app = make_app(REDIS_URL=server.url, CELERY_BROKER_URL=broker)
    fill_to_oom(server)
    params = recording_params()

    response = post_callback(app.test_client(), params)

    assert response.status_code == 204
    assert response.headers["X-Roomrec-Spooled"] == "1"
    spool = intake_state(app).spool
    intake_state(app).relay.stop()  # its own attempts meet the same OOM
    assert spool.pending() == 1
    with sqlite3.connect(spool.path) as connection:
        (row,) = connection.execute("SELECT message FROM spool").fetchall()
    assert json.loads(row[0])["params"]["RecordingSid"] == params["RecordingSid"]
    assert seen_marks(server.url) == []  # not marked seen: relayed once Redis has room
    assert queued(server.url) == []
