"""Builders shared by the worker unit tests: settings, processed events, a local HTTP server."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from schemas import HandlerEvent, RoomRecordingSchema, load_callback
from schemas.settings import WorkerSettings, WorkerSettingsSchema, load_settings
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, recording_params
from tests.unit.schemas.factories import resource_for
from workers.delivery.dedup import event_id

# 24 key bytes: base64 without padding.
FORWARD_SECRET = "whsec_" + base64.b64encode(b"roomrec-unit-test-secret").decode()


def worker_settings(**env: str) -> WorkerSettings:
    base = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HANDLERS": "log,forward", "FORWARD_URLS": "https://hooks.example.com/in",
        "FORWARD_SECRET": FORWARD_SECRET, "FORWARD_ALLOW_HTTP": "1", "FORWARD_TIMEOUT": "0.5",
        "MEDIA_ALLOWED_NETWORKS": "127.0.0.0/8",  # the emulator's media is on loopback
    }  # fmt: skip
    settings = load_settings(WorkerSettingsSchema(), base | env)
    assert isinstance(settings, WorkerSettings)
    return settings


def recording_event(params: dict[str, str] | None = None, **resource: Any) -> HandlerEvent:
    """A processed recording event with the RoomRecording Twilio would return for it."""
    params = params or recording_params()
    recording = RoomRecordingSchema().load(resource_for(params, **resource))
    return HandlerEvent(
        id=event_id(params), event=load_callback(params), recording=recording,
        received_at=datetime.now(UTC),
    )  # fmt: skip


def room_event(params: dict[str, str]) -> HandlerEvent:
    return HandlerEvent(
        id=event_id(params), event=load_callback(params), recording=None,
        received_at=datetime.now(UTC),
    )  # fmt: skip


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[Request, threading.Event], Response]


@dataclass
class LocalServer:
    """A real HTTP server on 127.0.0.1 answering every request with ``answer``; every request
    is recorded in ``seen``. ``release`` is set on stop, so a deliberately slow answer ends."""

    answer: Answer
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.seen.append(
            Seen(request.method, request.path, request.query_string.decode(),
                 dict(request.headers), request.get_data())
        )  # fmt: skip
        return self.answer(request, self.release)(environ, start_response)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
