"""Floods at the endpoint: more parameters than any callback, replays while the queue is down
(one spooled row each), a full spool (503), and the spool's depth at ``/metrics``."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.support.twilio import recording_params
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import FORM, assert_problem, post_callback
from webhooks.intake.state import intake_state
from webhooks.intake.views import CALLBACK_PATH


def flood(count: int) -> dict[str, str]:
    return recording_params() | {f"X{i}": "1" for i in range(count)}


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_too_many_parameters_are_refused_before_the_signature(
    make_app: AppFactory, method: str
) -> None:
    client = make_app().test_client()
    body = urlencode(flood(200))
    if method == "POST":  # no signature at all: the count is checked first
        response = client.post(CALLBACK_PATH, data=body, content_type=FORM)
    else:
        response = client.get(f"{CALLBACK_PATH}?{body}")
    assert assert_problem(response, 400)["type"].endswith("/too-many-parameters")


def test_a_too_long_parameter_name_is_refused(make_app: AppFactory) -> None:
    response = post_callback(make_app().test_client(), recording_params() | {"N" * 300: "1"})
    assert assert_problem(response, 400)["type"].endswith("/parameter-name-too-long")


def test_replays_while_the_queue_is_down_are_spooled_once(
    make_app: AppFactory, closed_url: str
) -> None:
    app = make_app(CELERY_BROKER_URL=closed_url, REDIS_URL=closed_url)
    client, params = app.test_client(), recording_params()
    answers = [post_callback(client, params) for _ in range(50)]
    assert {answer.status_code for answer in answers} == {204}
    assert intake_state(app).spool.pending() == 1


def test_a_full_spool_answers_503_with_retry_after(make_app: AppFactory, closed_url: str) -> None:
    app = make_app(CELERY_BROKER_URL=closed_url, REDIS_URL=closed_url, SPOOL_MAX_EVENTS="2")
    client = app.test_client()
    kept = [recording_params(), recording_params()]
    for params in kept:
        assert post_callback(client, params).headers["X-Roomrec-Spooled"] == "1"

    refused = post_callback(client, recording_params())

    assert assert_problem(refused, 503)["type"].endswith("/spool-full")
    assert int(refused.headers["Retry-After"]) > 0
    assert post_callback(client, kept[0]).status_code == 204  # already kept: not refused
    assert intake_state(app).spool.pending() == 2
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "roomrec_spool_events 2.0" in metrics
    assert "roomrec_spool_max_events 2.0" in metrics


def test_the_spool_depth_is_zero_while_the_queue_answers(make_app: AppFactory) -> None:
    client = make_app().test_client()
    assert post_callback(client, recording_params()).status_code == 204
    assert "roomrec_spool_events 0.0" in client.get("/metrics").get_data(as_text=True)
