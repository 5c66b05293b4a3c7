"""create_app: configuration, the enqueuer it builds, how servers find it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.cli import ScriptInfo

from schemas.settings import ConfigurationError, WebSettings, WebSettingsSchema, load_settings
from tests.support.twilio import AUTH_TOKEN, recording_params
from tests.unit.webhooks.helpers import post_callback, queued
from webhooks import MAX_BODY_BYTES, create_app
from webhooks.app_state import app_state
from workers.delivery.redis_broker import RedisBroker
from workers.service.intake import connect

# What the test client calls: the URL signatures are checked against.
LOCAL = {"PUBLIC_BASE_URL": "http://localhost"}


@pytest.fixture
def closing() -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        app_state(app).enqueuer.close()


@pytest.mark.parametrize("token", [None, ""])
def test_without_an_auth_token_the_app_refuses_to_start(token: str | None) -> None:
    config = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    if token is not None:
        config["TWILIO_AUTH_TOKEN"] = token
    with pytest.raises(ConfigurationError, match="TWILIO_AUTH_TOKEN"):
        create_app(config)


def test_a_malformed_variable_is_named() -> None:
    with pytest.raises(ConfigurationError, match="ENQUEUE_TIMEOUT"):
        create_app({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "ENQUEUE_TIMEOUT": "soon"})


def test_the_enqueuer_is_built_from_the_settings(closing: list[Flask], redis_url: str) -> None:
    app = create_app(
        {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url, "ENQUEUE_TIMEOUT": "0.25"} | LOCAL
    )
    closing.append(app)
    state = app_state(app)
    assert isinstance(state.enqueuer, RedisBroker)  # the broker is REDIS_URL's Redis
    assert state.enqueuer.redis.connection_pool.connection_kwargs["socket_timeout"] == 0.25
    assert state.settings.twilio_auth_token == AUTH_TOKEN
    assert app.config["MAX_CONTENT_LENGTH"] == MAX_BODY_BYTES
    assert post_callback(app.test_client(), recording_params()).status_code == 204
    assert len(queued(redis_url)) == 1


def test_settings_and_an_enqueuer_can_be_passed_in(redis_url: str) -> None:
    settings: WebSettings = load_settings(
        WebSettingsSchema(),
        {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": "redis://127.0.0.1:1/0"} | LOCAL,
    )
    enqueuer = connect(redis_url, redis_url, timeout=0.5, dedup_ttl=settings.dedup_ttl)
    try:
        app = create_app(settings, enqueuer=enqueuer)
        assert app_state(app).enqueuer is enqueuer
        assert app_state(app).settings is settings
        assert post_callback(app.test_client(), recording_params()).status_code == 204
    finally:
        enqueuer.close()
    assert len(queued(redis_url)) == 1


def test_no_config_reads_the_environment(
    closing: list[Flask], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-the-environment")
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://localhost")
    monkeypatch.setenv("REDIS_URL", redis_url)
    app = create_app()
    closing.append(app)
    assert app_state(app).settings.twilio_auth_token == "from-the-environment"


def test_no_config_and_no_token_in_the_environment_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="TWILIO_AUTH_TOKEN"):
        create_app()


def test_flask_finds_the_factory(
    closing: list[Flask], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `flask --app webhooks run` does.
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://localhost")
    monkeypatch.setenv("REDIS_URL", redis_url)
    app = ScriptInfo(app_import_path="webhooks").load_app()
    closing.append(app)
    assert app.name == "webhooks"
    assert app_state(app).settings.redis_url == redis_url


def test_the_settings_never_show_the_tokens(closing: list[Flask], redis_url: str) -> None:
    app = create_app(
        {
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_AUTH_TOKEN_SECONDARY": "secondary-secret",
            "REDIS_URL": redis_url,
        }
        | LOCAL
    )
    closing.append(app)
    shown = repr(app.extensions["roomrec"])
    assert AUTH_TOKEN not in shown and "secondary-secret" not in shown


def test_healthz(closing: list[Flask], redis_url: str) -> None:
    app = create_app({"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url} | LOCAL)
    closing.append(app)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
