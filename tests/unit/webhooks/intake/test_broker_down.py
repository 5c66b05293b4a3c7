"""An unreachable or hung queue: callbacks are spooled on disk within a second and relayed in
order when it is back; 503 only when the spool cannot write either."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import redis

from devtools.redis_server import RedisServer
from tests.support.twilio import recording_params
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import assert_problem, post_callback, queued, seen_marks
from webhooks.intake.state import intake_state


@pytest.mark.parametrize("broker", ["closed_url", "hung_url"])
@pytest.mark.parametrize("redis_down", [False, True], ids=["redis-up", "redis-down-too"])
def test_a_callback_while_the_queue_is_down_is_spooled_in_under_a_second(
    make_app: AppFactory,
    redis_url: str,
    request: pytest.FixtureRequest,
    broker: str,
    redis_down: bool,
) -> None:
    down = request.getfixturevalue(broker)
    app = make_app(CELERY_BROKER_URL=down, REDIS_URL=down if redis_down else redis_url)
    started = time.monotonic()
    response = post_callback(app.test_client(), recording_params())
    elapsed = time.monotonic() - started

    assert response.status_code == 204
    assert response.headers["X-Roomrec-Spooled"] == "1"
    assert elapsed < 1.0
    assert intake_state(app).spool.pending() == 1
    intake_state(app).relay.stop()  # let its own failing attempt finish
    # Not marked as seen, so the relay (or a retry) queues it once the queue is back.
    assert seen_marks(redis_url) == []
    assert queued(redis_url) == []


def test_spooled_events_reach_the_queue_in_order_when_it_is_back(
    make_app: AppFactory, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path / "later")  # a queue that is down, then comes back
    app = make_app(REDIS_URL=server.url)
    sent = [recording_params() for _ in range(5)]
    for params in sent:
        response = post_callback(app.test_client(), params)
        assert response.headers.get("X-Roomrec-Spooled") == "1"
    assert intake_state(app).spool.pending() == 5

    server.start()
    try:
        deadline = time.monotonic() + 10
        while intake_state(app).spool.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert intake_state(app).spool.pending() == 0
        relayed = [m["args"][0]["params"]["RecordingSid"] for m in queued(server.url)]
        assert relayed == [params["RecordingSid"] for params in sent]
        # Once relayed, the events are seen: Twilio's retry of one is a duplicate.
        again = post_callback(app.test_client(), sent[0])
        assert again.headers.get("X-Roomrec-Duplicate") == "1"
    finally:
        server.stop()


def test_while_the_spool_holds_events_new_ones_queue_behind_them(
    make_app: AppFactory, redis_url: str, closed_url: str
) -> None:
    first, second = recording_params(), recording_params()
    down = make_app(CELERY_BROKER_URL=closed_url)
    assert post_callback(down.test_client(), first).headers.get("X-Roomrec-Spooled") == "1"
    up = make_app()  # the same spool file, a queue that answers
    assert post_callback(up.test_client(), second).headers.get("X-Roomrec-Spooled") == "1"


def test_503_only_when_the_spool_cannot_write_either(
    make_app: AppFactory, closed_url: str, tmp_path: Path
) -> None:
    app = make_app(CELERY_BROKER_URL=closed_url, REDIS_URL=closed_url)
    other = sqlite3.connect(tmp_path / "spool.sqlite3", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the spool's write lock
    try:
        started = time.monotonic()
        response = post_callback(app.test_client(), recording_params())
        elapsed = time.monotonic() - started
    finally:
        other.execute("ROLLBACK")
        other.close()

    body = assert_problem(response, 503)
    assert body["type"] == "https://roomrec.dev/problems/queue-unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "locked" not in response.get_data(as_text=True)  # the cause is logged, not told
    assert elapsed < 2.0  # bounded: the queue's timeout, then the spool's busy timeout


def test_readyz_is_ok_when_the_queue_answers(make_app: AppFactory) -> None:
    response = make_app().test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "maxmemory_policy": {"REDIS_URL": "noeviction"}}


@pytest.mark.parametrize("down", ["closed_url", "hung_url"])
def test_readyz_is_503_within_a_second_when_the_queue_is_down(
    make_app: AppFactory, request: pytest.FixtureRequest, down: str
) -> None:
    url = request.getfixturevalue(down)
    client = make_app(CELERY_BROKER_URL=url, REDIS_URL=url).test_client()
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 1.0
    body = assert_problem(response, 503)
    assert body["type"] == "https://roomrec.dev/problems/not-ready"
    assert "Retry-After" in response.headers


def test_readyz_is_503_within_a_second_when_only_the_broker_is_down(
    make_app: AppFactory, closed_url: str
) -> None:
    client = make_app(CELERY_BROKER_URL=closed_url).test_client()
    started = time.monotonic()
    response = client.get("/readyz")
    assert_problem(response, 503)
    assert time.monotonic() - started < 1.0


def test_healthz_answers_even_when_the_queue_is_down(make_app: AppFactory, closed_url: str) -> None:
    client = make_app(CELERY_BROKER_URL=closed_url, REDIS_URL=closed_url).test_client()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_the_deduplication_record_lives_for_dedup_ttl(make_app: AppFactory, redis_url: str) -> None:
    app = make_app(DEDUP_TTL="3600", CALLBACK_MAX_AGE="600")  # the window within DEDUP_TTL
    params = recording_params()
    assert post_callback(app.test_client(), params).status_code == 204

    client = redis.Redis.from_url(redis_url)
    (mark,) = seen_marks(redis_url)
    assert 3500 < client.ttl(mark) <= 3600
    client.close()
