"""The callback endpoint bound to this service's URL, SharedKeys, HTTP Basic credentials and
several accounts. Signatures are made with twilio's RequestValidator, never the code under
test."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, recording_params, sid
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import FORM, LOCAL_URL, assert_problem, post_callback, queued
from webhooks.intake.views import CALLBACK_PATH

PROD = "https://prod.example"
STAGING = "https://staging.example"
KEY_ID = "webhooks_sharedkey_current"
KEY_SECRET = "sharedkey-secret-current-5d4c3b2a"
NEXT_ID = "webhooks_sharedkey_next"
NEXT_SECRET = "sharedkey-secret-next-1a2b3c4d"
SHARED_KEYS = f"{KEY_ID}={KEY_SECRET},{NEXT_ID}={NEXT_SECRET}"
SETTINGS = "X-Twilio-Webhooks-Signature-Settings"


def slug(response: TestResponse, status: int) -> str:
    body = assert_problem(response, status)
    return str(body["type"]).rsplit("/", 1)[-1]


def post_signed(
    client: FlaskClient,
    params: dict[str, str],
    *,
    secret: str,
    algorithm: str = "HMAC_SHA1",
    url: str = LOCAL_URL,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> TestResponse:
    """POST ``params`` signed with ``secret`` and ``algorithm`` for ``url``."""
    signature = RequestValidator(secret).compute_signature(url, params, algorithm)
    return client.post(
        CALLBACK_PATH,
        data=urlencode(params),
        content_type=FORM,
        headers={"X-Twilio-Signature": signature} | (headers or {}),
        **kwargs,
    )


# --- bound to this service's URL -----------------------------------------------------------


def test_a_callback_signed_for_staging_is_refused_by_production(
    make_app: AppFactory, redis_url: str
) -> None:
    client = make_app(PUBLIC_BASE_URL=PROD).test_client()
    staging = post_callback(
        client, recording_params(), url=STAGING + CALLBACK_PATH, headers={"Host": "staging.example"}
    )
    assert slug(staging, 403) == "invalid-signature"
    assert queued(redis_url) == []
    # Whatever Host or scheme the request names, production checks its own URL.
    ok = post_callback(client, recording_params(), url=PROD + CALLBACK_PATH,
                       headers={"Host": "staging.example"})  # fmt: skip
    assert ok.status_code == 204


def test_public_base_url_ignores_script_name(make_app: AppFactory) -> None:
    client = make_app(PUBLIC_BASE_URL=PROD).test_client()
    response = post_callback(
        client, recording_params(), url=PROD + CALLBACK_PATH,
        environ_overrides={"SCRIPT_NAME": "/mounted"},
    )  # fmt: skip
    assert response.status_code == 204


def test_a_host_not_in_allowed_hosts_is_refused_before_the_signature(
    make_app: AppFactory, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_app(PUBLIC_BASE_URL=None, ALLOWED_HOSTS="prod.example").test_client()
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        response = post_callback(
            client, recording_params(), url="http://staging.example" + CALLBACK_PATH,
            headers={"Host": "staging.example"},
        )  # fmt: skip
    assert slug(response, 400) == "host-not-allowed"
    assert "staging.example" in caplog.text and "signature" not in caplog.text
    assert queued(redis_url) == []
    ok = post_callback(client, recording_params(), url="http://prod.example" + CALLBACK_PATH,
                       headers={"Host": "prod.example"})  # fmt: skip
    assert ok.status_code == 204


def test_allowed_hosts_takes_the_scheme_from_the_request(make_app: AppFactory) -> None:
    client = make_app(PUBLIC_BASE_URL=None, ALLOWED_HOSTS="prod.example").test_client()
    url = "https://prod.example" + CALLBACK_PATH
    response = post_callback(client, recording_params(), url=url, base_url="https://prod.example")
    assert response.status_code == 204
    # Behind TLS termination the app sees http: the https signature fails (set PUBLIC_BASE_URL).
    behind = post_callback(client, recording_params(), url=url, base_url="http://prod.example")
    assert slug(behind, 403) == "invalid-signature"


def test_dev_mode_follows_the_request_host_and_says_so(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        client = make_app(PUBLIC_BASE_URL=None, DEV_MODE="1").test_client()
    [warning] = [r for r in caplog.records if "DEV_MODE" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "whatever Host" in warning.getMessage()
    url = "http://anything.example" + CALLBACK_PATH
    response = post_callback(client, recording_params(), url=url,
                             headers={"Host": "anything.example"})  # fmt: skip
    assert response.status_code == 204
    # DEV_MODE relaxes nothing else: a bad signature is still refused.
    assert_problem(post_callback(client, recording_params(), token="not-the-token"), 403)


def test_dev_mode_is_silent_when_the_url_is_fixed(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        make_app(DEV_MODE="1")
    assert "DEV_MODE" not in caplog.text


# --- SharedKeys ------------------------------------------------------------------------------


@pytest.fixture
def keyed(make_app: AppFactory) -> FlaskClient:
    return make_app(TWILIO_WEBHOOK_SHARED_KEYS=SHARED_KEYS).test_client()


@pytest.mark.parametrize("algorithm", ["HMAC_SHA256", "HMAC_SHA1"])
@pytest.mark.parametrize(("key_id", "secret"), [(KEY_ID, KEY_SECRET), (NEXT_ID, NEXT_SECRET)])
def test_a_callback_signed_with_a_shared_key_is_queued(
    keyed: FlaskClient, redis_url: str, algorithm: str, key_id: str, secret: str
) -> None:
    headers = {SETTINGS: f"key={key_id},algorithm={algorithm}"}
    response = post_signed(keyed, recording_params(), secret=secret, algorithm=algorithm,
                           headers=headers)  # fmt: skip
    assert response.status_code == 204
    assert len(queued(redis_url)) == 1


@pytest.mark.parametrize(
    ("header", "secret", "expected"),
    [
        ("key=webhooks_sharedkey_old,algorithm=HMAC_SHA256", KEY_SECRET, "unknown-signing-key"),
        (f"key={KEY_ID},algorithm=HMAC_SHA512", KEY_SECRET, "unsupported-signature-algorithm"),
        (f"key={KEY_ID};algorithm=HMAC_SHA256", KEY_SECRET, "invalid-signature-settings"),
        ("", KEY_SECRET, "invalid-signature-settings"),
        ("key=" + "k" * 5000, KEY_SECRET, "invalid-signature-settings"),
        (f"key={KEY_ID},algorithm=HMAC_SHA256", AUTH_TOKEN, "signed-with-auth-token"),
        (f"key={KEY_ID},algorithm=HMAC_SHA256", NEXT_SECRET, "invalid-signature"),
    ],
)
def test_a_shared_key_callback_is_refused_saying_why(
    keyed: FlaskClient,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    header: str,
    secret: str,
    expected: str,
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        response = post_signed(keyed, recording_params(), secret=secret,
                               algorithm="HMAC_SHA256", headers={SETTINGS: header})  # fmt: skip
    assert slug(response, 403) == expected
    assert queued(redis_url) == []
    shown = response.get_data(as_text=True) + caplog.text
    for secret_value in (KEY_SECRET, NEXT_SECRET, AUTH_TOKEN):
        assert secret_value not in shown


def test_without_the_header_the_auth_token_still_signs(keyed: FlaskClient) -> None:
    assert post_callback(keyed, recording_params()).status_code == 204
    unnamed = post_signed(keyed, recording_params(), secret=KEY_SECRET)
    assert slug(unnamed, 403) == "invalid-signature"


# --- HTTP Basic ------------------------------------------------------------------------------

BASIC = "twilio:b4sic-pa55"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def guarded(make_app: AppFactory) -> FlaskClient:
    return make_app(TWILIO_WEBHOOK_BASIC_AUTH=BASIC).test_client()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("twilio", "wrong"),
        basic("other", "b4sic-pa55"),
        basic("twilio", "b4sic-pa55x"),
        {"Authorization": "Bearer b4sic-pa55"},
        {"Authorization": "Basic !!!not-base64"},
    ],
)
def test_without_the_right_basic_credentials_the_answer_is_401(
    guarded: FlaskClient, redis_url: str, caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhooks"):
        response = post_callback(guarded, recording_params(), headers=headers)
    assert slug(response, 401) == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="roomrec"'
    assert queued(redis_url) == []
    assert "b4sic-pa55" not in caplog.text + response.get_data(as_text=True)


def test_the_right_basic_credentials_and_signature_pass(guarded: FlaskClient) -> None:
    response = post_callback(guarded, recording_params(), headers=basic("twilio", "b4sic-pa55"))
    assert response.status_code == 204


def test_the_right_basic_credentials_do_not_replace_the_signature(guarded: FlaskClient) -> None:
    response = post_callback(guarded, recording_params(), token="not-the-token",
                             headers=basic("twilio", "b4sic-pa55"))  # fmt: skip
    assert slug(response, 403) == "invalid-signature"


def test_a_signature_over_the_url_with_the_credentials_passes(guarded: FlaskClient) -> None:
    url = "http://twilio:b4sic-pa55@localhost" + CALLBACK_PATH
    response = post_callback(guarded, recording_params(), url=url,
                             headers=basic("twilio", "b4sic-pa55"))  # fmt: skip
    assert response.status_code == 204


# --- several accounts ------------------------------------------------------------------------

OTHER_SID = sid("AC")
OTHER_TOKEN = "other-account-token-77665544"


@pytest.fixture
def multi(make_app: AppFactory) -> FlaskClient:
    accounts = {OTHER_SID: {"auth_token": OTHER_TOKEN}}
    return make_app(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_ACCOUNTS=json.dumps(accounts)
    ).test_client()


def test_each_account_is_checked_with_its_own_token(multi: FlaskClient, redis_url: str) -> None:
    assert post_callback(multi, recording_params()).status_code == 204
    other = recording_params(AccountSid=OTHER_SID)
    assert post_callback(multi, other, token=OTHER_TOKEN).status_code == 204
    assert len(queued(redis_url)) == 2


@pytest.mark.parametrize(
    ("account", "token"), [(OTHER_SID, AUTH_TOKEN), (ACCOUNT_SID, OTHER_TOKEN)]
)
def test_a_token_of_another_account_is_refused(
    multi: FlaskClient, redis_url: str, account: str, token: str
) -> None:
    response = post_callback(multi, recording_params(AccountSid=account), token=token)
    assert slug(response, 403) == "invalid-signature"
    assert queued(redis_url) == []


@pytest.mark.parametrize("account", [sid("AC"), "not-a-sid", None])
def test_an_unknown_account_is_refused(multi: FlaskClient, account: str | None) -> None:
    params = recording_params(AccountSid=account or "")
    if account is None:
        del params["AccountSid"]
    response = post_callback(multi, params)
    assert slug(response, 403) == "unknown-account"


def test_a_single_account_web_checks_any_account_sid_with_its_token(client: FlaskClient) -> None:
    # TWILIO_AUTH_TOKEN alone, exactly as before: the AccountSid does not choose anything.
    assert post_callback(client, recording_params(AccountSid=sid("AC"))).status_code == 204
