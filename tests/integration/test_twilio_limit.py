"""``TWILIO_MAX_CONCURRENCY`` against the emulator limiting concurrent requests (429 beyond
them): TwilioVideo clients on connections of their own, as worker processes are, and the real
worker with more processes than the limit."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from emulator.client import EmulatorProcess
from tests.integration.conftest import wait_for
from tests.integration.test_pipeline import completed_recording, post
from tests.unit.workers.helpers import worker_settings
from workers.twilio.client import TwilioVideo
from workers.twilio.limiter import TwilioLimiter

pytestmark = pytest.mark.integration

LIMIT = 2


def fetch_all(
    twilio: EmulatorProcess, redis_url: str, cap: int | None, recordings: list[dict[str, str]],
    *, clients: int = 6,
) -> list[BaseException]:  # fmt: skip
    """Every recording fetched once, by ``clients`` threads with a TwilioVideo and a limiter
    (capped at ``cap``, or none) of their own; the errors raised."""
    settings = worker_settings(TWILIO_VIDEO_BASE_URL=twilio.url, TWILIO_TIMEOUT="5")
    errors: list[BaseException] = []
    connections: list[redis.Redis] = []

    def fetch(part: list[dict[str, str]]) -> None:
        limiter = None
        if cap is not None:
            connection = redis.Redis.from_url(redis_url, socket_timeout=30)
            connections.append(connection)
            limiter = TwilioLimiter(connection, cap, lease=30, wait=10)
        video = TwilioVideo(settings, limiter=limiter)
        for params in part:
            try:
                video.fetch_recording(params["RoomSid"], params["RecordingSid"])
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(recordings[n::clients],))
               for n in range(clients)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    return errors


def by_status(twilio: EmulatorProcess) -> dict[str, int]:
    stats: dict[str, Any] = twilio.control.stats()
    return {str(k): int(v) for k, v in stats["by_status"].items()}


def test_clients_capped_at_the_account_limit_are_never_refused(twilio, redis_url) -> None:
    twilio.control.set_settings(max_concurrency=LIMIT, latency_ms=30)
    recordings = [completed_recording(twilio) for _ in range(36)]

    errors = fetch_all(twilio, redis_url, LIMIT, recordings)

    assert errors == []
    assert by_status(twilio) == {"200": 36}
    assert twilio.control.stats()["peak_concurrency"] == LIMIT


def test_a_cap_above_the_account_limit_adapts_after_a_few_429s(twilio, redis_url) -> None:
    twilio.control.set_settings(max_concurrency=LIMIT, latency_ms=30)
    recordings = [completed_recording(twilio) for _ in range(60)]

    errors = fetch_all(twilio, redis_url, 6, recordings)

    # Each 429 shrank the shared limit and its request waited for a slot again, in place.
    assert errors == []
    statuses = by_status(twilio)
    assert statuses["200"] == 60
    assert 0 < statuses.get("429", 0) <= 12
    with redis.Redis.from_url(redis_url) as connection:
        assert TwilioLimiter(connection, 6, lease=30, wait=1).limit() <= LIMIT + 1


def test_without_a_cap_the_same_clients_are_refused(twilio, redis_url) -> None:
    """What the cap saves: the same fetches with no limiter run into 429s."""
    twilio.control.set_settings(max_concurrency=LIMIT, latency_ms=30)
    recordings = [completed_recording(twilio) for _ in range(24)]

    errors = fetch_all(twilio, redis_url, None, recordings)

    assert errors and by_status(twilio).get("429", 0) == len(errors)


def test_a_worker_with_more_processes_than_the_limit_fetches_without_429s(
    start_stack, twilio, forward_target
) -> None:
    twilio.control.set_settings(max_concurrency=LIMIT, latency_ms=30)
    stack = start_stack(concurrency=6, TWILIO_MAX_CONCURRENCY=str(LIMIT))
    sent = [completed_recording(twilio) for _ in range(30)]

    for params in sent:
        assert post(stack.callback_url, params).status_code == 204
    wait_for(lambda: len(forward_target.deliveries) >= len(sent), timeout=60,
             message="every event forwarded")  # fmt: skip

    assert by_status(twilio) == {"200": len(sent)}
    assert stack.dead_letters() == []
