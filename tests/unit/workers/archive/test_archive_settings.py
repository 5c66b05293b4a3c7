"""The archive variables: defaults, validation at start-up naming the variable."""

from __future__ import annotations

import pytest

from schemas.settings import ConfigurationError, WorkerSettings, WorkerSettingsSchema, load_settings
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN

BASE = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HANDLERS": "archive"}


def load(**env: str) -> WorkerSettings:
    settings = load_settings(WorkerSettingsSchema(), BASE | env)
    assert isinstance(settings, WorkerSettings)
    return settings


def test_defaults() -> None:
    settings = load()

    assert settings.archive_url == "file://./data/recordings"
    assert settings.archive_delete_from_twilio is False
    assert settings.archive_timeout == 15.0
    assert settings.s3_endpoint_url is None
    assert settings.aws_access_key_id is None


def test_s3_settings_are_read_and_secrets_not_shown() -> None:
    settings = load(
        ARCHIVE_URL="s3://my-bucket/rec", S3_ENDPOINT_URL="http://minio:9000",
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="very-secret",
        AWS_SESSION_TOKEN="session-secret", AWS_REGION="eu-west-1",
        ARCHIVE_DELETE_FROM_TWILIO="1", ARCHIVE_TIMEOUT="5",
    )  # fmt: skip

    assert (settings.archive_url, settings.s3_endpoint_url) == (
        "s3://my-bucket/rec", "http://minio:9000",
    )  # fmt: skip
    assert (settings.aws_access_key_id, settings.aws_region) == ("AKIAEXAMPLE", "eu-west-1")
    assert settings.archive_delete_from_twilio is True
    assert settings.archive_timeout == 5.0
    assert "very-secret" not in repr(settings)
    assert "session-secret" not in repr(settings)


@pytest.mark.parametrize(
    "url",
    ["file:///srv/recordings", "file://./data/recordings", "file:rec", "s3://my-bucket",
     "s3://my-bucket/some/prefix", "S3://my.bucket-1/x"],
)  # fmt: skip
def test_accepted_archive_urls(url: str) -> None:
    assert load(ARCHIVE_URL=url).archive_url == url


@pytest.mark.parametrize(
    "url",
    ["/srv/recordings", "http://example.com/x", "s3://", "s3://ab", "s3://My_Bucket/x",
     "s3:bucket", "file://", "s3://-bucket", "gs://bucket/x"],
)  # fmt: skip
def test_refused_archive_urls(url: str) -> None:
    with pytest.raises(ConfigurationError, match="ARCHIVE_URL"):
        load(ARCHIVE_URL=url)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIA"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID"),
        ({"ARCHIVE_DELETE_FROM_TWILIO": "1", "HANDLERS": "log"}, "ARCHIVE_DELETE_FROM_TWILIO"),
        ({"ARCHIVE_DELETE_FROM_TWILIO": "maybe"}, "ARCHIVE_DELETE_FROM_TWILIO"),
        ({"ARCHIVE_TIMEOUT": "0"}, "ARCHIVE_TIMEOUT"),
        ({"ARCHIVE_TIMEOUT": "500"}, "ARCHIVE_TIMEOUT"),
        ({"S3_ENDPOINT_URL": "minio:9000"}, "S3_ENDPOINT_URL"),
    ],
)
def test_inconsistent_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load(**env)


def test_a_worker_with_the_archive_handler_starts() -> None:
    import workers

    app = workers.create_worker_app(BASE | {"ARCHIVE_URL": "s3://my-bucket/rec"})

    assert app.conf["roomrec_settings"].handlers == ("archive",)
