"""Settings for Redis Sentinel: sentinel:// URLs in REDIS_URL and CELERY_BROKER_URL, the
master's name (required with them) and the sentinels' own password."""

from __future__ import annotations

import pytest

from schemas.settings import (
    ConfigurationError,
    RedisSentinel,
    WebSettingsSchema,
    WorkerSettingsSchema,
    load_settings,
)
from tests.unit.schemas.test_settings import AUTH_TOKEN, load_web, load_worker, worker_env
from workers.observability.logs import settings_secrets

GROUP = "sentinel://:master-pw@s1:26379/0;sentinel://s2:26379/0;sentinel://s3:26379/0"
SENTINEL_ENV = {"REDIS_SENTINEL_MASTER": "mymaster", "REDIS_SENTINEL_PASSWORD": "sentinel-pw"}


def web_env(**env: str) -> dict[str, str]:
    return {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "DEV_MODE": "1"} | env


def test_a_sentinel_group_serves_as_redis_and_as_broker() -> None:
    settings = load_worker(worker_env(REDIS_URL=GROUP, **SENTINEL_ENV))
    assert settings.redis_url == settings.broker_url == GROUP
    assert settings.redis_sentinel == RedisSentinel("mymaster", "sentinel-pw")
    assert settings.retry_backoff_max == 1800.0  # a Redis broker: retries wait in Redis
    web = load_web(web_env(CELERY_BROKER_URL=GROUP, REDIS_SENTINEL_MASTER="mymaster"))
    assert web.redis_sentinel == RedisSentinel("mymaster")


def test_without_the_masters_name_there_is_no_sentinel() -> None:
    assert load_worker(worker_env()).redis_sentinel is None
    assert load_web(web_env()).redis_sentinel is None


@pytest.mark.parametrize("variable", ["REDIS_URL", "CELERY_BROKER_URL"])
@pytest.mark.parametrize("schema", [WorkerSettingsSchema, WebSettingsSchema])
def test_a_sentinel_url_without_the_masters_name_fails_naming_both(
    variable: str, schema: type[WorkerSettingsSchema] | type[WebSettingsSchema]
) -> None:
    env = (worker_env if schema is WorkerSettingsSchema else web_env)(**{variable: GROUP})
    with pytest.raises(ConfigurationError, match="REDIS_SENTINEL_MASTER") as caught:
        load_settings(schema(), env)
    assert f"Required when {variable} is a sentinel:// URL" in str(caught.value)
    assert "master-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "sentinel://:master-pw@s1:26379;redis://s2:6379",  # every part a sentinel
        "sentinel://:master-pw@s1:port",
        "sentinel://:master-pw@s1:26379/zero",
        "sentinel://:master-pw@",
    ],
)
def test_a_malformed_sentinel_url_fails_naming_its_variable_never_quoting_it(url: str) -> None:
    with pytest.raises(ConfigurationError, match="REDIS_URL: Every ;-separated URL") as caught:
        load_worker(worker_env(REDIS_URL=url, **SENTINEL_ENV))
    assert "master-pw" not in str(caught.value)


def test_neither_password_reaches_a_log() -> None:
    settings = load_worker(worker_env(REDIS_URL=GROUP, **SENTINEL_ENV))
    secrets = settings_secrets(settings)
    assert "master-pw" in secrets and "sentinel-pw" in secrets
    assert "sentinel-pw" not in repr(settings)
