"""User handlers (``package.module:function``) for the integration tests."""

from __future__ import annotations

import os
import time

import redis

from schemas import HandlerEvent, RoomRecording


def always_fails(event: HandlerEvent, recording: RoomRecording | None) -> None:
    raise RuntimeError(f"this handler always fails ({event.id})")


def slow_effect(event: HandlerEvent, recording: RoomRecording | None) -> None:
    """Takes ``SLOW_HANDLER_SECONDS`` (default 3), then counts one effect for the event in
    Redis. Records its PID first, so a test can kill the process running it."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.rpush("test:pids", os.getpid())
    time.sleep(float(os.environ.get("SLOW_HANDLER_SECONDS", "3")))
    client.incr(f"test:effects:{event.id}")
    client.close()
