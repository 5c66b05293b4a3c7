"""Replays refused by the callback's signed Timestamp: the pure check with an injected clock,
the settings that bound it, and the endpoint on the private Redis."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
import redis
from flask.testing import FlaskClient

from schemas.settings import ConfigurationError, WebSettings, WebSettingsSchema, load_settings
from tests.support.twilio import AUTH_TOKEN, recording_params, room_params, timestamp
from tests.unit.schemas.factories import composition_params
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import (
    assert_problem,
    get_callback,
    post_callback,
    queued,
    seen_marks,
)
from webhooks.errors import CallbackFromTheFuture, StaleCallback
from webhooks.intake.freshness import check_timestamp
from webhooks.intake.state import intake_state

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    callback_max_age: int = 3600
    callback_max_skew: int = 300


# --- the check, with an injected clock ------------------------------------------------------


@pytest.mark.parametrize("offset", [0, -3600, 300, -1, 1], ids=str)
def test_a_timestamp_within_the_window_passes(offset: int) -> None:
    check_timestamp(NOW + timedelta(seconds=offset), Window(), now=NOW)


def test_a_timestamp_older_than_max_age_is_stale() -> None:
    with pytest.raises(StaleCallback) as caught:
        check_timestamp(NOW - timedelta(seconds=3601), Window(), now=NOW)
    assert caught.value.status == 403 and caught.value.slug == "stale-callback"
    assert "3600" in caught.value.detail


def test_a_timestamp_beyond_max_skew_is_from_the_future() -> None:
    with pytest.raises(CallbackFromTheFuture) as caught:
        check_timestamp(NOW + timedelta(seconds=301), Window(), now=NOW)
    assert caught.value.status == 403 and caught.value.slug == "callback-from-the-future"


def test_the_window_is_the_configured_one_and_offsets_count() -> None:
    window = Window(callback_max_age=60, callback_max_skew=0)
    paris = timezone(timedelta(hours=2))
    check_timestamp((NOW - timedelta(seconds=59)).astimezone(paris), window, now=NOW)
    with pytest.raises(StaleCallback):
        check_timestamp((NOW - timedelta(seconds=61)).astimezone(paris), window, now=NOW)
    with pytest.raises(CallbackFromTheFuture):
        check_timestamp(NOW + timedelta(seconds=1), window, now=NOW)


# --- the settings ---------------------------------------------------------------------------

BASE = {"TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": "https://roomrec.example.com"}


def web_settings(**env: str) -> WebSettings:
    settings = load_settings(WebSettingsSchema(), BASE | env)
    assert isinstance(settings, WebSettings)
    return settings


def test_the_window_defaults_to_an_hour_and_five_minutes_of_skew() -> None:
    settings = web_settings()
    assert (settings.callback_max_age, settings.callback_max_skew) == (3600, 300)
    assert settings.spool_max_events == 100_000


def test_the_window_must_end_before_the_deduplication_marks_do() -> None:
    assert web_settings(DEDUP_TTL="3600", CALLBACK_MAX_AGE="3299").callback_max_age == 3299
    with pytest.raises(ConfigurationError, match="CALLBACK_MAX_AGE.*DEDUP_TTL"):
        web_settings(DEDUP_TTL="3600", CALLBACK_MAX_AGE="3300")
    with pytest.raises(ConfigurationError, match="CALLBACK_MAX_AGE"):
        web_settings(DEDUP_TTL="600", CALLBACK_MAX_SKEW="600")


@pytest.mark.parametrize(
    ("name", "value"),
    [("CALLBACK_MAX_AGE", "0"), ("CALLBACK_MAX_AGE", "soon"), ("CALLBACK_MAX_SKEW", "-1"),
     ("SPOOL_MAX_EVENTS", "0")],
)  # fmt: skip
def test_a_bad_window_or_bound_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        web_settings(**{name: value})


# --- the endpoint ---------------------------------------------------------------------------


def ago(seconds: float) -> str:
    return timestamp(datetime.now(UTC) - timedelta(seconds=seconds))


def test_a_stale_callback_is_refused_and_nothing_queued(
    client: FlaskClient, redis_url: str
) -> None:
    response = post_callback(client, recording_params(Timestamp=ago(2 * 3600)))
    body = assert_problem(response, 403)
    assert body["type"].endswith("/stale-callback")
    assert queued(redis_url) == [] and seen_marks(redis_url) == []


def test_a_callback_from_the_future_is_refused(client: FlaskClient, redis_url: str) -> None:
    response = get_callback(client, room_params(Timestamp=ago(-600)))
    assert assert_problem(response, 403)["type"].endswith("/callback-from-the-future")
    assert queued(redis_url) == []


def test_a_stale_callback_is_not_spooled_while_the_queue_is_down(
    make_app: AppFactory, closed_url: str
) -> None:
    app = make_app(CELERY_BROKER_URL=closed_url, REDIS_URL=closed_url)
    response = post_callback(app.test_client(), recording_params(Timestamp=ago(2 * 3600)))
    assert_problem(response, 403)
    assert intake_state(app).spool.pending() == 0


def test_a_forged_stale_callback_learns_only_that_its_signature_is_wrong(
    client: FlaskClient,
) -> None:
    response = post_callback(client, recording_params(Timestamp=ago(2 * 3600)), token="forged")
    assert assert_problem(response, 403)["type"].endswith("/invalid-signature")


def test_composition_callbacks_are_checked_too(client: FlaskClient, redis_url: str) -> None:
    captured = composition_params()  # its Timestamp is of 2020
    assert assert_problem(post_callback(client, captured), 403)["type"].endswith("/stale-callback")
    fresh = composition_params(Timestamp=ago(5))
    assert post_callback(client, fresh).status_code == 204
    assert len(queued(redis_url)) == 1


def test_a_room_ended_replayed_after_its_mark_expired_is_refused(
    make_app: AppFactory, redis_url: str
) -> None:
    client = make_app(DEDUP_TTL="60", CALLBACK_MAX_AGE="2", CALLBACK_MAX_SKEW="1").test_client()
    ended = room_params("room-ended", RoomStatus="completed", RoomDuration="60",
                        Timestamp=ago(0.5))  # fmt: skip
    assert post_callback(client, ended).status_code == 204
    assert post_callback(client, ended).headers["X-Roomrec-Duplicate"] == "1"

    time.sleep(2)  # the callback is now older than CALLBACK_MAX_AGE ...
    marks = redis.Redis.from_url(redis_url)
    marks.delete(*seen_marks(redis_url))  # ... and its marks gone, as once DEDUP_TTL has passed
    marks.close()
    replay = post_callback(client, ended)

    assert assert_problem(replay, 403)["type"].endswith("/stale-callback")
    assert len(queued(redis_url)) == 1
