"""User handlers (``HANDLERS=tests.support.deploy_handlers:record``) for the deployment tests.

They write to the Redis of ``REDIS_URL`` which worker ran what: ``test:started`` and
``test:done`` get ``"<event id> <worker pid>"`` (the pool process's parent is the worker's
main process), so a test counts effects per event and per worker.
"""

from __future__ import annotations

import os
import time

import redis

from schemas import HandlerEvent, RoomRecording

STARTED = "test:started"
DONE = "test:done"


def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


def record(event: HandlerEvent, recording: RoomRecording | None) -> None:
    """Takes ``TEST_HANDLER_SECONDS`` (default 0) between ``test:started`` and ``test:done``."""
    client = _client()
    try:
        client.rpush(STARTED, f"{event.id} {os.getppid()}")
        time.sleep(float(os.environ.get("TEST_HANDLER_SECONDS", "0")))
        client.rpush(DONE, f"{event.id} {os.getppid()}")
    finally:
        client.close()


def fails_once(event: HandlerEvent, recording: RoomRecording | None) -> None:
    """Raises on the first attempt for each event, then records like :func:`record`."""
    client = _client()
    try:
        if client.incr(f"test:attempts:{event.id}") == 1:
            raise RuntimeError(f"first attempt for {event.id} fails")
    finally:
        client.close()
    record(event, recording)
