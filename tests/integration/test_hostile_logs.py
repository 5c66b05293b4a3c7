"""gunicorn under a hostile request line: it refuses one over ``limit_request_line``, and the
access and rejection lines of one just under it are redacted (the signed query masked) and,
for the rejection, truncated."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from devtools.processes import gunicorn_web
from devtools.redis_server import free_port
from tests.integration.conftest import wait_for
from tests.support.twilio import AUTH_TOKEN
from workers.observability.logs import MASK, TRUNCATE_AT

LIMIT_REQUEST_LINE = 4094  # gunicorn's default, which nothing here raises


def _send(port: int, query: str) -> bytes:
    head = (
        f"POST /twilio/room-events?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "X-Twilio-Signature: forged\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        return sock.recv(64)


def test_hostile_request_lines_are_bounded_and_logged_redacted(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url, "LOG_FORMAT": "json",
        "SPOOL_PATH": str(tmp_path / "spool.sqlite3"), "ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_CMD_ARGS": "--access-logfile -",
    }  # fmt: skip
    web = gunicorn_web(config, tmp_path / "web.log", port, workers=1)
    fits = "a=signature=1'" + "?" * (LIMIT_REQUEST_LINE - 100)
    try:
        assert _send(port, fits).startswith(b"HTTP/1.1 403")
        assert _send(port, fits + "?" * 200).startswith(b"HTTP/1.1 414")
        wait_for(lambda: "POST /twilio/room-events" in web.log(), 30, "the access line")
    finally:
        web.stop()
    records = [json.loads(line) for line in web.log().splitlines() if line.startswith("{")]
    [access] = [
        r["message"] for r in records
        if r["logger"] == "gunicorn.access" and "room-events" in r["message"]
    ]  # fmt: skip
    [rejected] = [r["message"] for r in records if str(r["message"]).startswith("rejected")]
    for message in (access, rejected):
        assert "signature=1" not in message and f"?{MASK}'" in message.replace("\\'", "'")
    assert len(access) < LIMIT_REQUEST_LINE + 200  # the request line, bounded by gunicorn
    assert len(rejected) < 2 * TRUNCATE_AT and "chars)" in rejected


def test_gunicorn_lines_in_text_mode_mask_the_secrets_of_the_app(
    redis_url: str, tmp_path: Path
) -> None:
    # A secret the app knows only through its structured settings (a SharedKey) must be masked
    # in gunicorn's own access lines too, in text format as in JSON.
    secret = "shared-key-secret-4711"
    port = free_port()
    config = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url, "LOG_FORMAT": "text",
        "SPOOL_PATH": str(tmp_path / "spool.sqlite3"), "ALLOWED_HOSTS": "127.0.0.1",
        "TWILIO_WEBHOOK_SHARED_KEYS": f"key1={secret}",
        "GUNICORN_CMD_ARGS": "--access-logfile -",
    }  # fmt: skip
    web = gunicorn_web(config, tmp_path / "web.log", port, workers=1)
    try:
        assert _send(port, f"leak={secret}").startswith(b"HTTP/1.1 403")
        wait_for(lambda: "POST /twilio/room-events" in web.log(), 30, "the access line")
    finally:
        web.stop()
    [access] = [line for line in web.log().splitlines() if "POST /twilio/room-events" in line]
    assert secret not in web.log() and f"leak={MASK}" in access
