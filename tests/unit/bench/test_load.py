"""What the benchmarks send and receive: signed callbacks the real endpoint accepts, the wrk
script (every thread its own callbacks), the bare receiver in its own process."""

from __future__ import annotations

import random
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from bench import callbacks
from bench.ingest import WrkOptions, run_wrk
from bench.receiver import ReceiverProcess
from webhooks import create_app
from webhooks.app_state import app_state
from webhooks.intake.state import intake_state
from workers.delivery.celery_app import EVENTS_QUEUE


def test_the_signed_callbacks_are_accepted_and_queued_by_the_real_endpoint(redis_url, tmp_path):
    app = create_app({
        "TWILIO_AUTH_TOKEN": callbacks.AUTH_TOKEN, "PUBLIC_BASE_URL": callbacks.PUBLIC_BASE_URL,
        "REDIS_URL": redis_url, "SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
    })  # fmt: skip
    items = callbacks.recordings(random.Random(1), 3)
    signer = callbacks.Signer()
    try:
        with app.test_client() as client:
            statuses = [
                client.post(callbacks.CALLBACK_PATH, data=signed.body,
                            headers=signer.headers(signed)).status_code
                for signed in callbacks.signed_callbacks(items)
            ]  # fmt: skip
    finally:
        intake_state(app).relay.stop()
        app_state(app).enqueuer.close()
    assert statuses == [204, 204, 204]
    with redis.Redis.from_url(redis_url) as client:
        assert client.llen(EVENTS_QUEUE) == 3  # three distinct recordings: none a duplicate


@pytest.mark.parametrize("checked", [False, True])
def test_the_floors_queue_each_body_and_the_checked_one_checks(redis_url, monkeypatch, checked):
    from bench import floor_app

    for name, value in {"REDIS_URL": redis_url, "PUBLIC_BASE_URL": callbacks.PUBLIC_BASE_URL,
                        "TWILIO_AUTH_TOKEN": callbacks.AUTH_TOKEN}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    app = floor_app.create_checked_app() if checked else floor_app.create_app()
    signed = next(callbacks.signed_callbacks(callbacks.recordings(random.Random(2), 1)))
    forged = {"X-Twilio-Signature": "Zm9yZ2Vk", "Content-Type": "application/x-www-form-urlencoded"}
    app.testing = False  # an exception is an answer (500), as under gunicorn

    try:
        with app.test_client() as client:
            good = client.post(callbacks.CALLBACK_PATH, data=signed.body,
                               headers=callbacks.Signer().headers(signed))  # fmt: skip
            bad = client.post(callbacks.CALLBACK_PATH, data=signed.body, headers=forged)
    finally:
        floor_app.close(app)

    assert good.status_code == 204
    with redis.Redis.from_url(redis_url) as client:
        queued = client.lrange(floor_app.FLOOR_QUEUE, 0, -1)
    if checked:  # a forged signature is refused before anything is queued
        assert bad.status_code != 204 and queued == [signed.body.encode()]
    else:  # the floor checks nothing
        assert bad.status_code == 204 and queued == [signed.body.encode()] * 2


def test_every_recording_is_distinct_and_knows_its_webhook_id():
    items = callbacks.recordings(random.Random(2), 50)
    assert len({item.sid for item in items}) == 50
    assert items[0].event_id.startswith("evt_") and items[0].event_id != items[1].event_id


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(self.headers["X-Twilio-Signature"])
        self.send_response(204)
        self.end_headers()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # wrk cuts its connections when its time is up


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    class Recorder(_Recorder):
        seen: list[str] = []

    handler = Recorder
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}{callbacks.CALLBACK_PATH}", handler.seen
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_the_wrk_script_gives_each_thread_its_own_callbacks(recorder, tmp_path: Path):
    url, seen = recorder
    requests_file = tmp_path / "requests.txt"
    # Far more callbacks than a Python server answers in a second: none is sent twice unless
    # two threads send the same ones.
    requests_file.write_text("".join(f"sig{n} Body={n}\n" for n in range(40_000)))
    wrk = shutil.which("wrk")
    assert wrk is not None
    figures = run_wrk(wrk, url, requests_file, WrkOptions(threads=2, connections=2), 1)
    assert figures["status_errors"] == 0 and figures["requests"] >= 20
    assert len(seen) >= figures["requests"] and len(seen) < 40_000
    assert len(set(seen)) == len(seen)
    assert {int(s.removeprefix("sig")) % 2 for s in seen} == {0, 1}  # both threads sent


def test_the_receiver_notes_the_first_arrival_of_each_webhook_id():
    receiver = ReceiverProcess()
    try:
        with requests.Session() as session:
            for webhook_id in ("evt_a", "evt_b", "evt_a"):
                response = session.post(receiver.hook_url, data=b"{}",
                                        headers={"webhook-id": webhook_id}, timeout=5)  # fmt: skip
                assert response.status_code == 200
        stats = receiver.stats()
        arrivals = receiver.arrivals()
        assert (stats["count"], stats["posts"]) == (2, 3)
        assert set(arrivals) == {"evt_a", "evt_b"} and arrivals["evt_a"] <= arrivals["evt_b"]
        receiver.reset()
        assert receiver.stats()["count"] == 0
    finally:
        receiver.stop()
