"""Configurations and checks shared by the deployment, scaling and shutdown tests."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import redis
import requests

from devtools.processes import ManagedProcess
from tests.support.deploy_handlers import DONE, STARTED
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, room_params, sign
from workers.delivery.dedup import event_id

RECORD = "tests.support.deploy_handlers:record"


def web_config(redis_url: str, broker_url: str, spool: Path, port: int) -> dict[str, str]:
    """The web's variables when it serves on 127.0.0.1:``port`` (the URL signatures bind to)."""
    return {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "SPOOL_PATH": str(spool),
    }


def worker_config(redis_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """A worker running only ``HANDLERS`` (default: :func:`record`), with short retries."""
    return {
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HANDLERS": RECORD,
        "RETRY_BACKOFF_MAX": "1",
        "TASK_MAX_RETRIES": "3",
        "METRICS_PORT": "0",  # several workers share this host
    } | extra


def stop_all(processes: list[ManagedProcess]) -> None:
    """SIGTERM to every process first, then wait for each (a worker takes seconds to stop)."""
    for process in processes:
        if process.process is not None and process.process.poll() is None:
            process.process.send_signal(signal.SIGTERM)
    for process in reversed(processes):
        process.stop()


def post_room_events(web_url: str, count: int) -> dict[str, requests.Response]:
    """``count`` distinct signed ``room-created`` callbacks (no Twilio fetch needed): the
    answers by event id."""
    url = f"{web_url}/twilio/room-events"
    answers = {}
    for _ in range(count):
        params = room_params()
        headers = {"X-Twilio-Signature": sign(url, params)}
        answers[event_id(params)] = requests.post(url, data=params, headers=headers, timeout=10)
    return answers


def entries(client: redis.Redis, key: str) -> list[tuple[str, int]]:
    """``(event id, worker pid)`` pairs recorded under ``key`` (``test:started``/``done``)."""
    found = []
    for entry in client.lrange(key, 0, -1):  # type: ignore[union-attr]
        event, pid = (entry.decode() if isinstance(entry, bytes) else entry).split()
        found.append((event, int(pid)))
    return found


def done_per_event(client: redis.Redis) -> Counter[str]:
    return Counter(event for event, _ in entries(client, DONE))


def started_per_event(client: redis.Redis) -> Counter[str]:
    return Counter(event for event, _ in entries(client, STARTED))


def done_per_worker(client: redis.Redis) -> Counter[int]:
    return Counter(pid for _, pid in entries(client, DONE))
