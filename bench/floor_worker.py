"""The drain floor: the least a worker must do per ``recording-completed`` event to fetch the
RoomRecording from Twilio and hand it on, run as ``celery -A bench.floor_worker worker`` with
the same flags as the real worker and the no-op baseline.

Its one task, ``bench.floor``, GETs the recording from the emulator and POSTs the answer's
bytes to the receiver, over one keep-alive ``requests.Session`` per process: no schema, no
signature on the forward, no store, no log line, no de-duplication or done marks, no retry.
No real worker that fetches and forwards each event can drain faster, so its rate against the
no-op tasks bounds the drain ratio any implementation can reach on the machine at hand."""

from __future__ import annotations

import os
import uuid

import redis
import requests

from workers.celery_app import EVENTS_QUEUE, make_celery
from workers.publish import build_message

FLOOR_TASK = "bench.floor"

app = make_celery(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
_sessions: dict[int, requests.Session] = {}


def _session() -> requests.Session:  # one per pool process, made after the fork
    pid = os.getpid()
    if pid not in _sessions:
        session = requests.Session()
        session.auth = (os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"])
        _sessions[pid] = session
    return _sessions[pid]


@app.task(name=FLOOR_TASK)
def fetch_and_forward(room_sid: str, recording_sid: str, webhook_id: str) -> None:
    session = _session()
    base = os.environ["TWILIO_VIDEO_BASE_URL"].rstrip("/")
    fetched = session.get(f"{base}/v1/Rooms/{room_sid}/Recordings/{recording_sid}", timeout=10)
    fetched.raise_for_status()
    forwarded = session.post(
        os.environ["FORWARD_URLS"],
        data=fetched.content,
        headers={"Content-Type": "application/json", "webhook-id": webhook_id},
        auth=None,
        timeout=10,
    )
    forwarded.raise_for_status()


def queue_floor(client: redis.Redis, events: list[tuple[str, str, str]], batch: int = 1000) -> None:
    """Queue one ``bench.floor`` task per (room, recording, webhook id), as ``send_task`` would."""
    for start in range(0, len(events), batch):
        pipe = client.pipeline(transaction=False)
        for args in events[start : start + batch]:
            message = build_message(app, FLOOR_TASK, list(args), task_id=str(uuid.uuid4()),
                                    queue=EVENTS_QUEUE)  # fmt: skip
            pipe.lpush(EVENTS_QUEUE, message)
        pipe.execute()
