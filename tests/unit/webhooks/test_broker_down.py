"""An unreachable or hung queue: 503 with Retry-After within a second, nothing left behind."""

from __future__ import annotations

import time

import pytest

from tests.support.twilio import recording_params
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import assert_problem, post_callback, queued, seen_marks


@pytest.mark.parametrize("broker", ["closed_url", "hung_url"])
@pytest.mark.parametrize("redis_down", [False, True], ids=["redis-up", "redis-down-too"])
def test_a_callback_while_the_broker_is_down_is_503_in_under_a_second(
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
    body = assert_problem(response, 503)
    assert body["type"] == "https://roomrec.dev/problems/queue-unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert elapsed < 1.0
    # Not marked as seen, so Twilio's (or anyone's) retry is queued once the broker is back.
    assert seen_marks(redis_url) == []
    assert queued(redis_url) == []


def test_a_retry_after_the_broker_is_back_is_queued(
    make_app: AppFactory, redis_url: str, closed_url: str
) -> None:
    params = recording_params()
    down = make_app(CELERY_BROKER_URL=closed_url)
    assert_problem(post_callback(down.test_client(), params), 503)
    up = make_app()
    response = post_callback(up.test_client(), params)
    assert response.status_code == 204
    assert "X-Roomrec-Duplicate" not in response.headers
    assert len(queued(redis_url)) == 1


def test_readyz_is_ok_when_the_queue_answers(make_app: AppFactory) -> None:
    response = make_app().test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


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
