"""The drain floor: the least a worker must do per ``recording-completed`` event to fetch the
RoomRecording from Twilio and hand it on, run as ``celery -A bench.floor_worker worker`` with
the same flags as the real worker and the no-op baseline.

Its one task, ``bench.floor``, GETs the recording from the emulator and POSTs the answer's
bytes to the receiver, signed as the Standard Webhooks spec asks (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``, with the ``standardwebhooks`` library and
``FORWARD_SECRET``, as the forward handler signs), each over one keep-alive ``http.client``
connection per pool process (the standard library's client, cheaper than urllib3, which the
service uses): no schema, no store, no log line, no de-duplication or done marks, no ledger,
no retry. No real worker that fetches and forwards each event can drain faster, so its rate
against the no-op tasks bounds the drain ratio any implementation can reach on the machine at
hand, and the service's rate against it says what the guarantees cost."""

from __future__ import annotations

import base64
import http.client
import os
import uuid
from datetime import UTC, datetime
from functools import cache
from urllib.parse import urlsplit

import redis
from standardwebhooks.webhooks import Webhook

from workers.delivery.celery_app import EVENTS_QUEUE, make_celery
from workers.delivery.messages import build_message

FLOOR_TASK = "bench.floor"

app = make_celery(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
_connections: dict[tuple[int, str], http.client.HTTPConnection] = {}


def _exchange(url: str, method: str, path: str, body: bytes | None,
              headers: dict[str, str]) -> bytes:  # fmt: skip
    """One request over this process' connection to ``url``'s host (made after the fork)."""
    key = (os.getpid(), url)
    if key not in _connections:
        parts = urlsplit(url)
        _connections[key] = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection = _connections[key]
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status}")
    return data


@cache
def _webhook() -> Webhook:
    return Webhook(os.environ["FORWARD_SECRET"])


@app.task(name=FLOOR_TASK)
def fetch_and_forward(room_sid: str, recording_sid: str, webhook_id: str) -> None:
    account, token = os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"]
    basic = base64.b64encode(f"{account}:{token}".encode()).decode()
    base = os.environ["TWILIO_VIDEO_BASE_URL"]
    path = urlsplit(base).path.rstrip("/") + f"/v1/Rooms/{room_sid}/Recordings/{recording_sid}"
    fetched = _exchange(base, "GET", path, None,
                        {"Authorization": f"Basic {basic}"})  # fmt: skip
    target = os.environ["FORWARD_URLS"]
    sent_at = datetime.now(UTC)
    signed = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": _webhook().sign(webhook_id, sent_at, fetched.decode()),
    }
    _exchange(target, "POST", urlsplit(target).path, fetched, signed)


def queue_floor(client: redis.Redis, events: list[tuple[str, str, str]], batch: int = 1000) -> None:
    """Queue one ``bench.floor`` task per (room, recording, webhook id), as ``send_task`` would."""
    for start in range(0, len(events), batch):
        pipe = client.pipeline(transaction=False)
        for args in events[start : start + batch]:
            message = build_message(app, FLOOR_TASK, list(args), task_id=str(uuid.uuid4()),
                                    queue=EVENTS_QUEUE)  # fmt: skip
            pipe.lpush(EVENTS_QUEUE, message)
        pipe.execute()
