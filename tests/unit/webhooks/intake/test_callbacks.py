"""The callback endpoint with a real broker on the private Redis."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, run_wsgi_app

from schemas.settings import DEFAULT_DEDUP_TTL
from tests.support.twilio import AUTH_TOKEN, recording_params, room_params, sign, timestamp
from tests.unit.webhooks.helpers import (
    FORM,
    LOCAL_URL,
    assert_problem,
    get_callback,
    post_callback,
    queued,
    seen_marks,
    sign_pairs,
)
from webhooks import MAX_BODY_BYTES, create_app
from webhooks.intake.views import CALLBACK_PATH
from workers.delivery.celery_app import make_celery
from workers.delivery.dedup import event_id
from workers.delivery.redis_broker import RedisBroker


def test_a_valid_post_is_queued_once(client: FlaskClient, redis_url: str) -> None:
    params = recording_params()
    response = post_callback(client, params, headers={"I-Twilio-Idempotency-Token": "idem-1"})
    assert response.status_code == 204
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers
    assert "X-Roomrec-Duplicate" not in response.headers

    [message] = queued(redis_url)
    assert message["headers"]["task"] == "roomrec.process_event"
    assert message["headers"]["id"] == event_id(params)
    [body] = message["args"]
    assert body["v"] == 1
    assert body["id"] == event_id(params)
    assert body["params"] == params
    assert body["idempotency_token"] == "idem-1"
    received = datetime.fromisoformat(body["received_at"])
    assert abs(datetime.now(UTC) - received) < timedelta(seconds=5)


def test_a_duplicate_answers_204_and_is_not_queued_again(
    client: FlaskClient, redis_url: str
) -> None:
    params = recording_params()
    assert post_callback(client, params).status_code == 204
    # Twilio may resend a recording event with another Timestamp: still the same event.
    resent = timestamp(datetime.now(UTC) + timedelta(seconds=30))  # within CALLBACK_MAX_SKEW
    again = post_callback(client, params | {"Timestamp": resent})
    assert again.status_code == 204
    assert again.headers["X-Roomrec-Duplicate"] == "1"
    assert len(queued(redis_url)) == 1


def test_a_get_callback_is_queued(client: FlaskClient, redis_url: str) -> None:
    params = room_params("participant-connected", ParticipantSid="PA" + "0" * 32)
    response = get_callback(client, params)
    assert response.status_code == 204
    [message] = queued(redis_url)
    assert message["args"][0]["params"] == params


def test_a_get_signed_as_a_post_is_refused(client: FlaskClient, redis_url: str) -> None:
    params = room_params()
    query = urlencode(params)
    signature = sign(f"{LOCAL_URL}?{query}", params)  # params signed again: not Twilio's GET
    response = client.get(f"{CALLBACK_PATH}?{query}", headers={"X-Twilio-Signature": signature})
    assert_problem(response, 403)
    assert queued(redis_url) == []


def test_a_post_callback_url_with_a_query_string(client: FlaskClient, redis_url: str) -> None:
    params = room_params()
    assert post_callback(client, params, query="tenant=a%20b&x=%41").status_code == 204
    [message] = queued(redis_url)
    assert message["args"][0]["params"] == params  # the URL's query is not a callback param


@pytest.mark.parametrize(
    "signature",
    [None, "", "bm90IGEgc2lnbmF0dXJl", "garbage!", "caf\u00e9"],  # not ASCII: was a 500
)
def test_a_missing_or_wrong_signature_is_403(
    client: FlaskClient, redis_url: str, signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        response = client.post(
            CALLBACK_PATH, data=urlencode(recording_params()), content_type=FORM, headers=headers
        )
    body = assert_problem(response, 403)
    assert body["type"] == "https://roomrec.dev/problems/invalid-signature"
    assert "errors" not in body
    assert queued(redis_url) == [] and seen_marks(redis_url) == []
    assert "signature" in caplog.text and "403" in caplog.text
    if signature:
        assert signature not in caplog.text
    assert AUTH_TOKEN not in caplog.text


def test_a_signature_made_with_another_token_is_403(client: FlaskClient, redis_url: str) -> None:
    response = post_callback(client, recording_params(), token="another-token")
    assert_problem(response, 403)
    assert queued(redis_url) == []


def test_a_bad_signature_is_403_even_when_the_params_are_invalid(
    client: FlaskClient, redis_url: str
) -> None:
    params = recording_params(RecordingSid="nonsense", StatusCallbackEvent="nope")
    response = post_callback(client, params, token="another-token")
    body = assert_problem(response, 403)
    assert "RecordingSid" not in response.get_data(as_text=True)
    assert "StatusCallbackEvent" not in response.get_data(as_text=True)
    assert "errors" not in body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("RoomSid", "RM123"),
        ("AccountSid", "RM" + "0" * 32),
        ("RecordingSid", "not-a-sid"),
        ("Timestamp", "yesterday"),
        ("Size", "-5"),
        ("Duration", "three"),
        ("Codec", "mp3"),
        ("Container", "avi"),
    ],
)
def test_each_invalid_field_is_400_naming_it(
    client: FlaskClient, redis_url: str, field: str, value: str
) -> None:
    response = post_callback(client, recording_params(**{field: value}))
    body = assert_problem(response, 400)
    assert body["type"] == "https://roomrec.dev/problems/invalid-parameters"
    assert list(body["errors"]) == [field]
    assert body["errors"][field] and all(isinstance(m, str) for m in body["errors"][field])
    assert field in body["detail"]
    assert queued(redis_url) == [] and seen_marks(redis_url) == []


def test_a_missing_required_field_is_400_naming_it(client: FlaskClient, redis_url: str) -> None:
    params = recording_params()
    del params["RecordingSid"]
    body = assert_problem(post_callback(client, params), 400)
    assert list(body["errors"]) == ["RecordingSid"]


@pytest.mark.parametrize("event", [None, "room-exploded", "room-recordings_ready"])
def test_an_unknown_or_missing_event_is_400(
    client: FlaskClient, redis_url: str, event: str | None
) -> None:
    params = room_params()
    if event is None:
        del params["StatusCallbackEvent"]
    else:
        params["StatusCallbackEvent"] = event
    body = assert_problem(post_callback(client, params), 400)
    assert body["type"] == "https://roomrec.dev/problems/unknown-event"
    assert list(body["errors"]) == ["StatusCallbackEvent"]
    assert queued(redis_url) == []


def test_unknown_parameters_are_accepted_and_kept(client: FlaskClient, redis_url: str) -> None:
    params = room_params(NewTwilioThing="42", Another="")
    assert post_callback(client, params).status_code == 204
    assert queued(redis_url)[0]["args"][0]["params"] == params


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/x-www-form-urlencodedx",
    ],
)
def test_a_post_that_is_not_form_encoded_is_415(
    client: FlaskClient, redis_url: str, content_type: str | None
) -> None:
    params = recording_params()
    headers = {"X-Twilio-Signature": sign(LOCAL_URL, params)}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(CALLBACK_PATH, data=urlencode(params), headers=headers)
    assert_problem(response, 415)
    assert queued(redis_url) == []


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
    ],
)
def test_content_type_parameters_are_allowed(
    client: FlaskClient, redis_url: str, content_type: str
) -> None:
    params = recording_params()
    response = client.post(
        CALLBACK_PATH,
        data=urlencode(params),
        headers={"X-Twilio-Signature": sign(LOCAL_URL, params), "Content-Type": content_type},
    )
    assert response.status_code == 204


def big_params() -> dict[str, str]:
    return recording_params(Padding="x" * MAX_BODY_BYTES)


def test_a_body_over_64_kib_is_413(client: FlaskClient, redis_url: str) -> None:
    body = assert_problem(post_callback(client, big_params()), 413)
    assert body["type"] == "https://roomrec.dev/problems/request-entity-too-large"
    assert queued(redis_url) == []


def test_a_body_just_under_the_limit_is_read(client: FlaskClient, redis_url: str) -> None:
    params = recording_params()
    params["Padding"] = "x" * (MAX_BODY_BYTES - len(urlencode(params)) - len("&Padding="))
    assert len(urlencode(params)) == MAX_BODY_BYTES
    assert post_callback(client, params).status_code == 204


def run_raw(
    app: Flask, params: dict[str, str], **environ: object
) -> tuple[int, dict[str, str], bytes]:
    """POST ``params``, signed, with an environ the test client would not build: each keyword
    sets an environ key, or removes it when None."""
    env = EnvironBuilder(
        path=CALLBACK_PATH,
        method="POST",
        data=urlencode(params).encode(),
        content_type=FORM,
        headers=[("X-Twilio-Signature", sign(LOCAL_URL, params))],
    ).get_environ()
    for key, value in environ.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    app_iter, status, headers = run_wsgi_app(app, env, buffered=True)
    return int(status.split()[0]), dict(headers), b"".join(app_iter)


# A chunked request: the server terminates the stream and there is no Content-Length.
STREAMED: dict[str, object] = {"CONTENT_LENGTH": None, "wsgi.input_terminated": True}


def test_a_streamed_body_over_64_kib_is_413(app: Flask, redis_url: str) -> None:
    status, headers, _ = run_raw(app, big_params(), **STREAMED)
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    assert queued(redis_url) == []


def test_a_streamed_body_under_the_limit_is_read(app: Flask, redis_url: str) -> None:
    status, _, _ = run_raw(app, recording_params(), **STREAMED)
    assert status == 204
    assert len(queued(redis_url)) == 1


def test_a_body_the_server_does_not_delimit_is_not_read(app: Flask, redis_url: str) -> None:
    # Neither Content-Length nor a terminated stream: werkzeug reads nothing (it could hang).
    status, headers, _ = run_raw(app, recording_params(), CONTENT_LENGTH=None)
    assert status == 403
    assert headers["Content-Type"] == "application/problem+json"
    assert queued(redis_url) == []


def test_a_content_length_over_the_limit_is_413_before_reading(app: Flask) -> None:
    status, headers, _ = run_raw(app, recording_params(), CONTENT_LENGTH=str(10 * MAX_BODY_BYTES))
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"


def test_a_content_length_shorter_than_the_body_reads_only_that_much(
    app: Flask, redis_url: str
) -> None:
    # The rest of the body is never read, so the signature (over every parameter) fails.
    status, headers, _ = run_raw(app, big_params(), CONTENT_LENGTH="40")
    assert status == 403
    assert headers["Content-Type"] == "application/problem+json"
    assert queued(redis_url) == []


def test_a_content_length_longer_than_the_body_is_400(app: Flask, redis_url: str) -> None:
    params = recording_params()
    length = len(urlencode(params)) + 100
    status, headers, _ = run_raw(app, params, CONTENT_LENGTH=str(length))
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert queued(redis_url) == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"&RoomName=%FF%FE", "RoomName"),
        (b"&RoomName=caf%C3", "RoomName"),
        (b"&RoomName=\xff", "body"),
    ],
)
def test_invalid_utf8_in_the_form_is_400(
    client: FlaskClient, redis_url: str, body: bytes, named: str
) -> None:
    raw = urlencode(recording_params()).encode() + body
    response = client.post(
        CALLBACK_PATH,
        data=raw,
        content_type=FORM,
        headers={"X-Twilio-Signature": sign(LOCAL_URL, recording_params())},
    )
    problem = assert_problem(response, 400)
    assert problem["type"] == "https://roomrec.dev/problems/invalid-encoding"
    assert list(problem["errors"]) == [named]
    assert queued(redis_url) == []


def test_invalid_utf8_in_a_get_query_is_400(client: FlaskClient, redis_url: str) -> None:
    query = urlencode(room_params()) + "&RoomName=%FF"
    signature = sign(f"{LOCAL_URL}?{query}", None)
    response = client.get(f"{CALLBACK_PATH}?{query}", headers={"X-Twilio-Signature": signature})
    problem = assert_problem(response, 400)
    assert list(problem["errors"]) == ["RoomName"]
    assert queued(redis_url) == []


def test_a_param_repeated_with_different_values_is_400(client: FlaskClient, redis_url: str) -> None:
    params = recording_params()
    pairs = [*params.items(), ("RoomSid", "RM" + "1" * 32)]
    response = client.post(
        CALLBACK_PATH,
        data=urlencode(pairs),
        content_type=FORM,
        headers={"X-Twilio-Signature": sign_pairs(LOCAL_URL, pairs)},
    )
    body = assert_problem(response, 400)
    assert body["type"] == "https://roomrec.dev/problems/repeated-parameter"
    assert list(body["errors"]) == ["RoomSid"]
    assert queued(redis_url) == []


def test_a_param_repeated_with_the_same_value_is_accepted(
    client: FlaskClient, redis_url: str
) -> None:
    params = recording_params()
    pairs = [*params.items(), ("RoomSid", params["RoomSid"])]
    response = client.post(
        CALLBACK_PATH,
        data=urlencode(pairs),
        content_type=FORM,
        headers={"X-Twilio-Signature": sign_pairs(LOCAL_URL, pairs)},
    )
    assert response.status_code == 204
    assert queued(redis_url)[0]["args"][0]["params"] == params


def test_a_repeated_param_with_a_bad_signature_is_403(client: FlaskClient, redis_url: str) -> None:
    pairs = [*recording_params().items(), ("RoomSid", "RM" + "1" * 32)]
    response = client.post(
        CALLBACK_PATH,
        data=urlencode(pairs),
        content_type=FORM,
        headers={"X-Twilio-Signature": sign_pairs(LOCAL_URL, pairs, "other-token")},
    )
    assert_problem(response, 403)


@pytest.mark.parametrize("path", ["/", "/nope", "/twilio/room-events/extra", "/twilio"])
def test_unknown_paths_are_404_problems(client: FlaskClient, path: str) -> None:
    body = assert_problem(client.get(path), 404)
    assert body["type"] == "https://roomrec.dev/problems/not-found"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_problems(client: FlaskClient, method: str) -> None:
    response = client.open(CALLBACK_PATH, method=method)
    body = assert_problem(response, 405)
    assert body["type"] == "https://roomrec.dev/problems/method-not-allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_post_to_healthz_is_405(client: FlaskClient) -> None:
    assert_problem(client.post("/healthz"), 405)


class ExplodingBroker(RedisBroker):
    def enqueue(self, message: object) -> bool:
        raise RuntimeError("boom: internal detail")


def test_an_unexpected_error_is_a_500_problem_without_traceback(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(redis_url)
    enqueuer = ExplodingBroker(make_celery(redis_url), client, dedup_ttl=DEFAULT_DEDUP_TTL)
    app = create_app(
        {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": "http://localhost"}, enqueuer=enqueuer
    )
    try:
        with caplog.at_level(logging.ERROR, logger="webhooks"):
            response = post_callback(app.test_client(), recording_params())
    finally:
        enqueuer.close()
    body = assert_problem(response, 500)
    assert body["type"] == "https://roomrec.dev/problems/internal-error"
    assert "boom" not in response.get_data(as_text=True)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


def test_an_accepted_callback_is_logged_once_at_info(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    params = recording_params()
    with caplog.at_level(logging.INFO, logger="webhooks"):
        post_callback(client, params)
    [record] = [r for r in caplog.records if r.name.startswith("webhooks")]
    assert record.levelno == logging.INFO
    line = record.getMessage()
    for expected in ("recording-completed", params["RoomSid"], params["RecordingSid"]):
        assert expected in line
    assert event_id(params) in line
    assert AUTH_TOKEN not in caplog.text


def test_a_rejected_callback_is_logged_at_warning_with_the_reason(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="webhooks"):
        post_callback(client, recording_params(Size="-1"))
    [record] = [r for r in caplog.records if r.name.startswith("webhooks")]
    assert record.levelno == logging.WARNING
    assert "Size" in record.getMessage() and "400" in record.getMessage()
