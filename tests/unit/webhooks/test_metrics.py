"""webhooks.metrics: callbacks counted by event and outcome, time to acknowledge, the log
fields of a callback, and GET /metrics (queue depth included)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.support.twilio import recording_params, room_params
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import FORM, get_callback, post_callback
from webhooks.intake.views import CALLBACK_PATH
from webhooks.metrics import outcome


def count(event: str, outcome: str, status: int) -> float:
    labels = {"event": event, "outcome": outcome, "status": str(status)}
    return REGISTRY.get_sample_value("roomrec_callbacks_total", labels) or 0.0


def acks(status: int) -> float:
    labels = {"status": str(status)}
    return REGISTRY.get_sample_value("roomrec_callback_ack_seconds_count", labels) or 0.0


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }


def test_accepted_then_duplicate(client: FlaskClient) -> None:
    params = recording_params()
    accepted = count("recording-completed", "accepted", 204)
    duplicate = count("recording-completed", "duplicate", 204)
    timed = acks(204)
    assert post_callback(client, params).status_code == 204
    assert post_callback(client, params).status_code == 204
    assert count("recording-completed", "accepted", 204) == accepted + 1
    assert count("recording-completed", "duplicate", 204) == duplicate + 1
    assert acks(204) == timed + 2


def test_a_get_callback_is_counted_under_its_event(client: FlaskClient) -> None:
    before = count("room-created", "accepted", 204)
    assert get_callback(client, room_params("room-created")).status_code == 204
    assert count("room-created", "accepted", 204) == before + 1


@pytest.mark.parametrize(
    ("send", "event", "slug", "status"),
    [
        (lambda c: post_callback(c, recording_params(), token="wrong"),
         "recording-completed", "invalid-signature", 403),
        (lambda c: post_callback(c, recording_params(RecordingSid="RTnope")),
         "recording-completed", "invalid-parameters", 400),
        (lambda c: post_callback(c, room_params("room-exploded")), "unknown", "unknown-event", 400),
        (lambda c: c.post(CALLBACK_PATH, json={"RoomSid": "x"}),
         "unknown", "unsupported-media-type", 415),
        (lambda c: c.post(CALLBACK_PATH, data="a" * (65 * 1024), content_type=FORM),
         "unknown", "request-entity-too-large", 413),
        (lambda c: c.put(CALLBACK_PATH), "unknown", "method-not-allowed", 405),
    ],
)  # fmt: skip
def test_refusals_are_counted_by_their_problem(
    client: FlaskClient, send: object, event: str, slug: str, status: int
) -> None:
    before = count(event, slug, status)
    response = send(client)  # type: ignore[operator]
    assert response.status_code == status
    assert count(event, slug, status) == before + 1


def test_an_event_name_from_the_request_never_becomes_a_label(client: FlaskClient) -> None:
    post_callback(client, room_params("x" * 40))
    assert count("x" * 40, "unknown-event", 400) == 0


def test_spooled_and_unavailable(make_app: AppFactory, closed_url: str, tmp_path: Path) -> None:
    client = make_app(CELERY_BROKER_URL=closed_url, REDIS_URL=closed_url).test_client()
    spooled = count("recording-completed", "spooled", 204)
    assert post_callback(client, recording_params()).status_code == 204
    assert count("recording-completed", "spooled", 204) == spooled + 1

    unavailable = count("recording-completed", "unavailable", 503)
    other = sqlite3.connect(tmp_path / "spool.sqlite3", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # the spool cannot write either: 503
    try:
        assert post_callback(client, recording_params()).status_code == 503
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert count("recording-completed", "unavailable", 503) == unavailable + 1


def test_other_paths_are_not_counted_as_callbacks(client: FlaskClient) -> None:
    before = scrape(client)
    client.get("/healthz")
    client.get("/nowhere")
    after = scrape(client)
    callbacks = {k: v for k, v in after.items() if k[0] == "roomrec_callbacks_total"}
    assert callbacks == {k: v for k, v in before.items() if k[0] == "roomrec_callbacks_total"}


def test_metrics_show_callbacks_and_queue_depth(client: FlaskClient) -> None:
    post_callback(client, recording_params())
    post_callback(client, recording_params())
    found = scrape(client)
    assert found[("roomrec_queue_up", ())] == 1
    assert found[("roomrec_queue_depth", (("queue", "roomrec.events"),))] == 2
    assert found[("roomrec_queue_depth", (("queue", "roomrec.handlers"),))] == 0
    labels = (("event", "recording-completed"), ("outcome", "accepted"), ("status", "204"))
    assert found[("roomrec_callbacks_total", labels)] >= 2


def test_metrics_when_the_broker_is_down_answer_quickly(
    make_app: AppFactory, closed_url: str
) -> None:
    client = make_app(CELERY_BROKER_URL=closed_url, REDIS_URL=closed_url).test_client()
    found = scrape(client)
    assert found[("roomrec_queue_up", ())] == 0
    assert not [key for key in found if key[0] == "roomrec_queue_depth"]


def test_metrics_in_openmetrics_when_asked(client: FlaskClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.mimetype == "application/openmetrics-text"
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


def test_a_callback_log_line_carries_its_event_and_sids(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app(LOG_FORMAT="json").test_client()
    params = recording_params()
    capsys.readouterr()
    post_callback(client, params)
    post_callback(client, params, token="wrong")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    accepted = [line for line in lines if line["message"].startswith("accepted")]
    rejected = [line for line in lines if line["message"].startswith("rejected")]
    for line in (*accepted, *rejected):
        assert line["event"] == "recording-completed"
        assert line["room_sid"] == params["RoomSid"]
        assert line["recording_sid"] == params["RecordingSid"]
    assert accepted and rejected


@pytest.mark.parametrize(
    ("status", "headers", "problem_type", "expected"),
    [
        (204, {}, None, "accepted"),
        (204, {"X-Roomrec-Duplicate": "1"}, None, "duplicate"),
        (204, {"X-Roomrec-Spooled": "1"}, None, "spooled"),
        (204, {"x-roomrec-duplicate": "1"}, None, "duplicate"),  # header names: any case
        (204, {"X-Roomrec-Duplicate": ""}, None, "accepted"),
        (403, {}, "https://roomrec.dev/problems/invalid-signature", "invalid-signature"),
        (400, {}, "https://roomrec.dev/problems/NOT A SLUG", "http-400"),
        (404, {}, None, "http-404"),
        (503, {}, "https://roomrec.dev/problems/queue-unavailable", "unavailable"),
        (500, {}, "https://roomrec.dev/problems/internal-error", "error"),
    ],
)
def test_outcome(
    status: int, headers: dict[str, str], problem_type: str | None, expected: str
) -> None:
    assert outcome(status, headers, problem_type) == expected
