"""The emulator's HTTP server: keep-alive, idle connections, drops on reused connections,
stopping with requests in flight, and ``--log-requests``."""

from __future__ import annotations

import base64
import http.client
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from emulator.client import EmulatorProcess
from emulator.server.serving import THREADS

ROOM = "RM" + "5" * 32


def _connection(base_url: str) -> http.client.HTTPConnection:
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    return http.client.HTTPConnection(url.hostname, url.port, timeout=5)


def _get(connection: http.client.HTTPConnection, path: str, creds: Any) -> int:
    token = base64.b64encode(f"{creds.account_sid}:{creds.auth_token}".encode()).decode()
    connection.request("GET", path, headers={"Authorization": f"Basic {token}"})
    response = connection.getresponse()
    response.read()
    assert not response.will_close
    return response.status


def test_one_connection_serves_many_requests(base_url: str, creds: Any) -> None:
    connection = _connection(base_url)
    try:
        assert [_get(connection, "/v1/Recordings", creds) for _ in range(3)] == [200] * 3
        first = connection.sock
        assert _get(connection, "/v1/Recordings/RT" + "0" * 32, creds) == 404
        assert _get(connection, "/v1/Recordings", creds) == 200
        assert connection.sock is first  # never reopened
    finally:
        connection.close()


def test_idle_keep_alive_connections_hold_no_thread(base_url: str, creds: Any) -> None:
    with ExitStack() as stack:
        for _ in range(THREADS + 8):
            connection = _connection(base_url)
            stack.callback(connection.close)
            assert _get(connection, "/v1/Recordings", creds) == 200
        # Every idle connection above is still open: a new client is served at once.
        started = time.monotonic()
        assert requests.get(f"{base_url}/_emulator/health", timeout=5).ok
        assert time.monotonic() - started < 1


def test_a_drop_closes_a_kept_alive_connection_too(
    base_url: str, control: Any, api: requests.Session
) -> None:
    sid = control.create_recording(room_sid=ROOM, status="completed", size=4096)["sid"]
    url = f"{base_url}/v1/Recordings/{sid}"
    assert api.get(url, timeout=5).status_code == 200  # the session now holds a connection
    control.add_fault("/v1/Recordings", action="drop", count=1)
    with pytest.raises(requests.ConnectionError):
        api.get(url, timeout=5)
    assert api.get(url, timeout=5).status_code == 200


def test_stopping_abandons_a_request_still_running(creds: Any) -> None:
    with (
        EmulatorProcess(creds.account_sid, creds.auth_token) as process,
        ThreadPoolExecutor(1) as pool,
    ):
        process.control.add_fault("/v1/", action="latency", latency_ms=30_000)
        auth = (creds.account_sid, creds.auth_token)
        pending = pool.submit(requests.get, f"{process.url}/v1/Recordings", auth=auth, timeout=10)
        time.sleep(0.3)  # the request is asleep in its latency
        started = time.monotonic()
        assert process.stop() == 0
        assert time.monotonic() - started < 4  # a grace, then abandoned; never SIGKILLed
        with pytest.raises(requests.ConnectionError):
            pending.result()


def test_log_requests_writes_one_line_per_request_without_the_query(creds: Any) -> None:
    with EmulatorProcess(creds.account_sid, creds.auth_token, log_requests=True) as process:
        auth = (creds.account_sid, creds.auth_token)
        assert requests.get(f"{process.url}/v1/Recordings?PageSize=5", auth=auth).ok
        assert requests.get(f"{process.url}/v1/Recordings").status_code == 401
        deadline = time.monotonic() + 5
        while process.stderr_tail().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = process.stderr_tail().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        '"GET /v1/Recordings HTTP/1.1" 200',
        '"GET /v1/Recordings HTTP/1.1" 401',
    ]
    assert all(line.startswith("127.0.0.1 - - [") for line in lines)
