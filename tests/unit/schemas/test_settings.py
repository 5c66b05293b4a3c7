from __future__ import annotations

import base64
import os

import pytest

from schemas.settings import (
    ConfigurationError,
    WebSettings,
    WebSettingsSchema,
    WorkerSettings,
    WorkerSettingsSchema,
    load_settings,
)
from tests.support.twilio import ACCOUNT_SID, sid

AUTH_TOKEN = "tok-3f9c2b7d8e1a4c6b9d0e2f4a6c8b0d1e"
SECONDARY_TOKEN = "tok-secondary-77aa88bb99cc00dd"
API_KEY_SID = "SK" + "0123456789abcdef" * 2
API_KEY_SECRET = "apisecret-5Wq9zL1xK3vB7nM2"
FORWARD_SECRET = "whsec_" + base64.b64encode(b"k" * 24).decode()
REDIS_PASSWORD = "redis-pa55-word-9911"


def webhook_secret(size: int) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


def worker_env(**env: str) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN} | env


def forward_env(**env: str) -> dict[str, str]:
    return worker_env(
        HANDLERS="log,forward", FORWARD_URLS="https://hooks.example.com/in",
        FORWARD_SECRET=FORWARD_SECRET,
    ) | env  # fmt: skip


def load_worker(env: dict[str, str]) -> WorkerSettings:
    settings = load_settings(WorkerSettingsSchema(), env)
    assert isinstance(settings, WorkerSettings)
    return settings


def load_web(env: dict[str, str]) -> WebSettings:
    settings = load_settings(WebSettingsSchema(), env)
    assert isinstance(settings, WebSettings)
    return settings


def worker_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(WorkerSettingsSchema(), env)
    return str(caught.value)


def web_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(WebSettingsSchema(), env)
    return str(caught.value)


# --- web ----------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {"TWILIO_AUTH_TOKEN": ""}])
def test_web_requires_the_auth_token(env: dict[str, str]) -> None:
    assert "TWILIO_AUTH_TOKEN" in web_error(env)


def test_web_defaults() -> None:
    settings = load_web({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "ALLOWED_HOSTS": "rec.example.com"})

    assert settings.twilio_auth_token == AUTH_TOKEN
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.broker_url == "redis://localhost:6379/0"
    assert settings.public_base_url is None
    assert settings.trust_proxy_headers is False
    assert settings.twilio_auth_token_secondary is None
    assert settings.log_level == "INFO"


def test_web_public_base_url_loses_its_trailing_slash() -> None:
    settings = load_web(
        {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": "https://rec.example.com/"}
    )

    assert settings.public_base_url == "https://rec.example.com"


@pytest.mark.parametrize(
    ("name", "value"),
    [("PUBLIC_BASE_URL", "not a url"), ("ENQUEUE_TIMEOUT", "0"), ("ENQUEUE_TIMEOUT", "fast"),
     ("TRUST_PROXY_HEADERS", "maybe"), ("LOG_LEVEL", "LOUD")],
)  # fmt: skip
def test_web_malformed_variables_are_named(name: str, value: str) -> None:
    assert name in web_error({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, name: value})


def test_web_secrets_are_not_in_repr() -> None:
    settings = load_web({
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_AUTH_TOKEN_SECONDARY": SECONDARY_TOKEN,
        "PUBLIC_BASE_URL": "https://rec.example.com",
        "REDIS_URL": f"redis://:{REDIS_PASSWORD}@cache:6379/0",
        "CELERY_BROKER_URL": f"redis://:{REDIS_PASSWORD}@broker:6379/1",
    })  # fmt: skip

    text = repr(settings)

    for secret in (AUTH_TOKEN, SECONDARY_TOKEN, REDIS_PASSWORD):
        assert secret not in text
    assert settings.twilio_auth_token_secondary == SECONDARY_TOKEN


# --- worker: required variables --------------------------------------------------------------


@pytest.mark.parametrize("name", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"])
@pytest.mark.parametrize("unset", ["drop", "empty"])
def test_worker_required_variables_are_named(name: str, unset: str) -> None:
    env = worker_env()
    if unset == "drop":
        del env[name]
    else:
        env[name] = ""

    assert name in worker_error(env)


def test_worker_names_every_missing_variable_at_once() -> None:
    message = worker_error({})

    assert "TWILIO_ACCOUNT_SID" in message
    assert "TWILIO_AUTH_TOKEN" in message


def test_worker_names_field_and_consistency_problems_together() -> None:
    env = forward_env(TWILIO_ACCOUNT_SID="AC123", FORWARD_URLS="", FORWARD_SECRET="")

    message = worker_error(env)

    for name in ("TWILIO_ACCOUNT_SID", "FORWARD_URLS", "FORWARD_SECRET"):
        assert name in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("TWILIO_ACCOUNT_SID", sid("RM")), ("TWILIO_ACCOUNT_SID", "AC123"),
     ("TWILIO_API_KEY_SID", ACCOUNT_SID), ("TWILIO_VIDEO_BASE_URL", "video.twilio.com"),
     ("TWILIO_TIMEOUT", "0"), ("TWILIO_TIMEOUT", "-1"), ("TWILIO_TIMEOUT", "ten"),
     ("TASK_MAX_RETRIES", "-1"), ("TASK_MAX_RETRIES", "101"), ("TASK_MAX_RETRIES", "2.5"),
     ("VISIBILITY_TIMEOUT", "29"), ("FORWARD_TIMEOUT", "0"), ("FORWARD_URLS", "ftp://x.example.com"),
     ("FORWARD_ALLOW_HTTP", "perhaps")],
)  # fmt: skip
def test_worker_malformed_variables_are_named(name: str, value: str) -> None:
    assert name in worker_error(worker_env(**{name: value}))


def test_configuration_error_is_a_value_error_and_never_shows_secrets() -> None:
    env = forward_env(
        TWILIO_ACCOUNT_SID="AC123", TWILIO_API_KEY_SID=API_KEY_SID,
        TWILIO_API_KEY_SECRET=API_KEY_SECRET,
    )  # fmt: skip

    message = worker_error(env)

    assert issubclass(ConfigurationError, ValueError)
    for secret in (AUTH_TOKEN, API_KEY_SECRET, FORWARD_SECRET):
        assert secret not in message


# --- worker: defaults ------------------------------------------------------------------------


def test_worker_defaults() -> None:
    settings = load_worker(worker_env())

    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.broker_url == settings.redis_url
    assert settings.handlers == ("log",)
    assert settings.forward_urls == ()
    assert settings.forward_secret is None
    assert settings.forward_allow_http is False
    assert settings.twilio_video_base_url == "https://video.twilio.com"
    # A lost worker's tasks come back within two minutes: 90 s + a 10 s restore sweep.
    assert settings.visibility_timeout == 90
    # Retries wait in Redis, not in a worker, so they may span hours.
    assert settings.max_retries == 15 and settings.retry_backoff_max == 1800


def test_broker_falls_back_to_redis_url() -> None:
    settings = load_worker(worker_env(REDIS_URL="redis://cache:6380/3"))

    assert settings.redis_url == "redis://cache:6380/3"
    assert settings.broker_url == "redis://cache:6380/3"


@pytest.mark.parametrize("empty", [True, False])
def test_broker_url_is_used_when_set(empty: bool) -> None:
    env = worker_env(REDIS_URL="redis://cache:6380/3", CELERY_BROKER_URL="redis://broker:6381/0")
    if empty:
        env["CELERY_BROKER_URL"] = ""

    settings = load_worker(env)

    assert settings.broker_url == ("redis://cache:6380/3" if empty else "redis://broker:6381/0")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", ("log",)), ("log", ("log",)), (" log , forward ", ("log", "forward")),
     ("log,,pkg.mod:fn,", ("log", "pkg.mod:fn"))],
)  # fmt: skip
def test_handlers_are_a_comma_list(value: str, expected: tuple[str, ...]) -> None:
    env = forward_env(HANDLERS=value)

    assert load_worker(env).handlers == expected


# --- worker: credentials ----------------------------------------------------------------------


def test_credentials_are_the_account_and_token_without_an_api_key() -> None:
    assert load_worker(worker_env()).twilio_credentials == (ACCOUNT_SID, AUTH_TOKEN)


@pytest.mark.parametrize("with_token", [True, False])
def test_credentials_are_the_api_key_when_set(with_token: bool) -> None:
    env = worker_env(TWILIO_API_KEY_SID=API_KEY_SID, TWILIO_API_KEY_SECRET=API_KEY_SECRET)
    if not with_token:
        del env["TWILIO_AUTH_TOKEN"]

    assert load_worker(env).twilio_credentials == (API_KEY_SID, API_KEY_SECRET)


@pytest.mark.parametrize(
    ("given", "missing"),
    [({"TWILIO_API_KEY_SID": API_KEY_SID}, "TWILIO_API_KEY_SECRET"),
     ({"TWILIO_API_KEY_SECRET": API_KEY_SECRET}, "TWILIO_API_KEY_SID"),
     ({"TWILIO_API_KEY_SID": API_KEY_SID, "TWILIO_API_KEY_SECRET": ""}, "TWILIO_API_KEY_SECRET")],
)  # fmt: skip
@pytest.mark.parametrize("with_token", [True, False])
def test_api_key_needs_both_halves(given: dict[str, str], missing: str, with_token: bool) -> None:
    env = worker_env(**given)
    if not with_token:
        del env["TWILIO_AUTH_TOKEN"]

    assert missing in worker_error(env)


def test_without_api_key_the_auth_token_is_required() -> None:
    env = worker_env(TWILIO_AUTH_TOKEN="")

    message = worker_error(env)

    assert "TWILIO_AUTH_TOKEN" in message


# --- worker: forward --------------------------------------------------------------------------


def test_forward_settings_load() -> None:
    settings = load_worker(
        forward_env(FORWARD_URLS="https://a.example.com/in, https://b.example.com/in")
    )

    assert settings.handlers == ("log", "forward")
    assert settings.forward_urls == ("https://a.example.com/in", "https://b.example.com/in")
    assert settings.forward_secret == FORWARD_SECRET


@pytest.mark.parametrize("name", ["FORWARD_URLS", "FORWARD_SECRET"])
def test_forward_requires_urls_and_secret(name: str) -> None:
    env = forward_env()
    del env[name]

    assert name in worker_error(env)


def test_forward_names_both_missing_variables() -> None:
    message = worker_error(worker_env(HANDLERS="forward"))

    assert "FORWARD_URLS" in message
    assert "FORWARD_SECRET" in message


@pytest.mark.parametrize("allow", [None, "0", "false", ""])
def test_http_forward_urls_are_rejected(allow: str | None) -> None:
    env = forward_env(FORWARD_URLS="https://a.example.com/in,http://b.example.com/in")
    if allow is not None:
        env["FORWARD_ALLOW_HTTP"] = allow

    message = worker_error(env)

    assert "FORWARD_URLS" in message
    assert "http://b.example.com/in" in message


@pytest.mark.parametrize("allow", ["1", "true", "yes"])
def test_http_forward_urls_are_allowed_when_asked(allow: str) -> None:
    env = forward_env(FORWARD_URLS="http://127.0.0.1:8080/hooks", FORWARD_ALLOW_HTTP=allow)

    settings = load_worker(env)

    assert settings.forward_urls == ("http://127.0.0.1:8080/hooks",)
    assert settings.forward_allow_http is True


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("whsec_" + base64.b64encode(b"k" * 23).decode(), id="23-bytes"),
        pytest.param("whsec_AAAA", id="3-bytes"),
        pytest.param(base64.b64encode(b"k" * 32).decode(), id="no-prefix"),
        pytest.param("WHSEC_" + base64.b64encode(b"k" * 32).decode(), id="upper-prefix"),
        pytest.param("whsec_" + "!" * 40, id="not-base64"),
        pytest.param("sk_live_" + "a" * 40, id="other-scheme"),
    ],
)
def test_bad_forward_secrets_are_rejected(secret: str) -> None:
    message = worker_error(forward_env(FORWARD_SECRET=secret))

    assert "FORWARD_SECRET" in message
    assert secret not in message


@pytest.mark.parametrize("size", [24, 32, 33, 48, 64])
def test_standard_webhook_secrets_are_accepted(size: int) -> None:
    # Standard Webhooks secrets are whsec_ + base64 of 24..64 bytes: padded or not.
    secret = webhook_secret(size)

    assert load_worker(forward_env(FORWARD_SECRET=secret)).forward_secret == secret


# --- worker: retry limits ---------------------------------------------------------------------


@pytest.mark.parametrize("backoff_max", ["1", "600", "7200", "86400"])
def test_backoff_may_exceed_the_visibility_timeout(backoff_max: str) -> None:
    # Delayed retries wait in a Redis sorted set, not unacknowledged in a worker.
    settings = load_worker(worker_env(RETRY_BACKOFF_MAX=backoff_max, VISIBILITY_TIMEOUT="60"))
    assert settings.retry_backoff_max == float(backoff_max)


def test_worker_secrets_are_not_in_repr() -> None:
    settings = load_worker(forward_env(
        TWILIO_API_KEY_SID=API_KEY_SID, TWILIO_API_KEY_SECRET=API_KEY_SECRET,
        REDIS_URL=f"redis://:{REDIS_PASSWORD}@cache:6379/0",
    ))  # fmt: skip

    text = repr(settings)

    for secret in (AUTH_TOKEN, API_KEY_SECRET, FORWARD_SECRET, REDIS_PASSWORD):
        assert secret not in text
    assert API_KEY_SID in text  # identifiers stay visible


def test_the_reconcile_window_must_be_shorter_than_the_deduplication_ttl() -> None:
    # Older recordings would no longer be known as processed, and would be processed again.
    assert "RECONCILE_WINDOW" in worker_error(worker_env(RECONCILE_WINDOW="7200", DEDUP_TTL="3600"))
    settings = load_worker(worker_env(RECONCILE_WINDOW="7200", DEDUP_TTL="86400"))
    assert settings.dedup_ttl == 86400


@pytest.mark.parametrize(
    "amqp", ["amqp://guest:guest@127.0.0.1:5672//", "amqps://u:p@mq:5671/roomrec;amqps://u:p@mq2"]
)
def test_retries_of_any_length_on_rabbitmq_as_on_redis(amqp: str) -> None:
    """RabbitMQ delays retries itself (native delayed delivery): no countdown in a worker."""
    assert load_worker(worker_env()).retry_backoff_max == 1800  # Redis: retries wait in Redis
    assert load_worker(worker_env(CELERY_BROKER_URL=amqp)).retry_backoff_max == 1800
    long = load_worker(worker_env(CELERY_BROKER_URL=amqp, RETRY_BACKOFF_MAX="86400"))
    assert long.retry_backoff_max == 86400


def test_the_retry_backoff_respects_the_consumer_timeout_of_other_brokers() -> None:
    other = "sqs://key:secret@"  # Celery's countdown holds each retry in the worker there
    assert load_worker(worker_env(CELERY_BROKER_URL=other)).retry_backoff_max == 900
    assert "RETRY_BACKOFF_MAX" in worker_error(
        worker_env(CELERY_BROKER_URL=other, RETRY_BACKOFF_MAX="1800")
    )
    assert load_worker(worker_env(CELERY_BROKER_URL=other, RETRY_BACKOFF_MAX="600"))
