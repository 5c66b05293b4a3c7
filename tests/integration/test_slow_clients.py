"""The web as the image runs it (``gunicorn -c gunicorn.conf.py``, its CMD) holds under slow
clients, closes them after its header and body deadlines, and trusts no proxy header unless
told to."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from devtools.processes import BIN, REPO, ManagedProcess
from devtools.redis_server import free_port
from tests.support.twilio import AUTH_TOKEN, room_params, sign

pytestmark = pytest.mark.integration

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
SLOW = 200  # connections, a third each trickling headers, trickling a body, idle kept alive
ANSWER_BOUND = 1.0  # seconds: a behavioural bound with a wide margin, not a benchmark


def image_command(port: int, app: str | None = None) -> list[str]:
    """The Dockerfile's CMD, bound to loopback on ``port`` (and serving ``app`` if given)."""
    cmd = next(
        line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    )
    args: list[str] = json.loads(cmd.removeprefix("CMD "))
    assert args[0] == "gunicorn" and args[args.index("--bind") + 1] == "0.0.0.0:8000"
    args[0] = str(BIN / "gunicorn")
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    if app is not None:
        args[-1] = app
    return args


def start_web(
    tmp_path: Path, config: Mapping[str, str], app: str | None = None
) -> tuple[ManagedProcess, int]:
    port = free_port()
    env = {
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        # The app then checks signatures over the URL gunicorn gives it, whatever its Host.
        "PUBLIC_BASE_URL": "",
        "ALLOWED_HOSTS": "",
        "DEV_MODE": "1",
        "TRUST_PROXY_HEADERS": "0",
        "FORWARDED_ALLOW_IPS": "",
        "LOG_FORMAT": "text",
        # Only the stop differs from the image: a worker still booting when the test ends
        # ignores SIGTERM, and gunicorn would wait its whole graceful timeout (20 s).
        "GUNICORN_CMD_ARGS": "--graceful-timeout 2",
        **config,
    }
    web = ManagedProcess(image_command(port, app), env, tmp_path / f"web-{port}.log")
    web.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return web, port
        except requests.RequestException:
            pass
        if web.process is None or web.process.poll() is not None or time.monotonic() > deadline:
            log = web.log()
            web.stop()
            raise RuntimeError(f"gunicorn did not come up:\n{log[-3000:]}")
        time.sleep(0.1)


@pytest.fixture
def web(redis_url: str, tmp_path: Path) -> Iterator[tuple[ManagedProcess, int]]:
    process, port = start_web(
        tmp_path,
        {
            "REDIS_URL": redis_url,
            "WEB_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "WEB_BODY_TIMEOUT": str(BODY_TIMEOUT),
        },
    )
    yield process, port
    process.stop()


@dataclass
class Slow:
    """One slow connection: what it still has to send, one piece per tick."""

    kind: str
    sock: socket.socket
    pieces: list[bytes]
    opened: float = field(default_factory=time.monotonic)
    closed: float | None = None
    received: bytes = b""


def open_slow(port: int, kind: str) -> Slow:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if kind == "headers":  # a request line, then one header line per tick, never the end
        sock.sendall(b"POST /twilio/room-events HTTP/1.1\r\n")
        pieces = [b"X-Slow-%d: 1\r\n" % i for i in range(1000)]
    elif kind == "body":  # complete headers, then the body a byte per tick
        sock.sendall(
            b"POST /twilio/room-events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        )
        pieces = [b"a"] * 1000
    else:  # one complete request, then idle on the kept-alive connection
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        pieces = []
    sock.setblocking(False)
    return Slow(kind, sock, pieces)


def tick(connections: list[Slow]) -> None:
    """Send each open connection its next piece; note those the server has closed."""
    now = time.monotonic()
    open_ = [c for c in connections if c.closed is None]
    readable, _, _ = select.select([c.sock for c in open_], [], [], 0)
    for slow in open_:
        if slow.sock in readable:
            try:
                data = slow.sock.recv(65536)
            except ConnectionError:
                data = b""
            slow.received += data
            if not data:
                slow.closed = now
                continue
        if slow.pieces:
            try:
                slow.sock.send(slow.pieces.pop(0))
            except (BlockingIOError, ConnectionError):
                pass


def signed_callback(port: int) -> requests.Response:
    url = f"http://127.0.0.1:{port}/twilio/room-events"
    params = room_params("room-created")
    return requests.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)},
                         timeout=5)  # fmt: skip


def test_slow_clients_neither_block_callbacks_nor_stay(web: tuple[ManagedProcess, int]) -> None:
    process, port = web
    kinds = ["headers", "body", "idle"]
    connections = [open_slow(port, kinds[i % 3]) for i in range(SLOW)]
    try:
        tick(connections)
        time.sleep(0.3)
        answers: list[tuple[str, int, float]] = []
        for _ in range(8):  # while all of them are open
            tick(connections)
            for name, call in (
                ("callback", lambda: signed_callback(port)),
                ("healthz", lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)),
            ):
                started = time.monotonic()
                status = call().status_code
                answers.append((name, status, time.monotonic() - started))
            time.sleep(0.1)
        assert all(c.closed is None for c in connections if c.kind != "idle"), "closed early"
        assert {(name, status) for name, status, _ in answers} == {
            ("callback", 204),
            ("healthz", 200),
        }
        slowest = max(elapsed for _, _, elapsed in answers)
        assert slowest < ANSWER_BOUND, answers

        deadline = time.monotonic() + HEADER_TIMEOUT + BODY_TIMEOUT + 3
        while any(c.closed is None for c in connections) and time.monotonic() < deadline:
            time.sleep(0.25)
            tick(connections)
        still_open = [c.kind for c in connections if c.closed is None]
        assert not still_open, f"{len(still_open)} slow connections left open: {still_open[:5]}"
        for slow in connections:
            assert slow.closed is not None
            lasted = slow.closed - slow.opened
            bound = HEADER_TIMEOUT if slow.kind != "body" else BODY_TIMEOUT
            assert bound - 0.5 < lasted < bound + 2.0, (slow.kind, lasted)
            if slow.kind == "body":
                head, _, body = slow.received.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 408 "), slow.received[:200]
                assert b"application/problem+json" in head.lower()
                assert json.loads(body)["status"] == 408
            if slow.kind == "idle":
                assert slow.received.startswith(b"HTTP/1.1 200 "), slow.received[:200]
        assert signed_callback(port).status_code == 204  # the web is still well
    finally:
        for slow in connections:
            slow.sock.close()
    log = process.log()
    assert "Using worker: BoundedGeventWorker" in log
    assert "MonkeyPatchWarning" not in log and "Traceback" not in log, log[-3000:]


def test_a_client_expecting_100_continue_gets_it_before_sending_its_body(
    web: tuple[ManagedProcess, int],
) -> None:
    _, port = web
    url = f"http://127.0.0.1:{port}/twilio/room-events"
    params = room_params("room-created")
    body = urlencode(params).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /twilio/room-events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
            b"X-Twilio-Signature: %s\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            % (port, len(body), sign(url, params).encode())
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 204 "), answer[:200]


def test_a_pipelining_client_does_not_keep_the_process_to_itself(tmp_path: Path) -> None:
    """One connection sends thousands of requests at once: gevent switches only when a socket
    would block, so without a yield between two requests the others would wait for them all."""
    process, port = start_web(
        tmp_path, {"WEB_CONCURRENCY": "1"}, app="tests.support.wsgi_probe:app"
    )
    count = 10_000
    done_at: list[float] = []

    def pipeline() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            reader = threading.Thread(target=read_all, args=(sock,))
            reader.start()
            sock.sendall(b"GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\n" * count)
            reader.join()

    def read_all(sock: socket.socket) -> None:
        marker, found, tail = b"HTTP/1.1 200 ", 0, b""
        while found < count:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            found += (tail + chunk).count(marker)
            tail = chunk[-(len(marker) - 1) :]
        done_at.append(time.monotonic())

    try:
        sender = threading.Thread(target=pipeline)
        sender.start()
        time.sleep(0.2)
        started = time.monotonic()
        answer = requests.get(f"http://127.0.0.1:{port}/other", timeout=30)
        answered = time.monotonic()
        sender.join()
    finally:
        process.stop()
    assert answer.status_code == 200
    assert done_at and answered < done_at[0], f"answered only after the {count} pipelined ones"
    assert answered - started < ANSWER_BOUND / 2, answered - started


def probe(port: int, path: str = "/twilio/room-events") -> dict[str, str]:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "SCRIPT_NAME": "/prefix"}
    answer = requests.get(f"http://127.0.0.1:{port}/prefix{path}", headers=headers, timeout=5)
    answer.raise_for_status()
    found: dict[str, str] = answer.json()
    return found


def test_gunicorn_trusts_no_proxy_header_from_loopback_by_default(tmp_path: Path) -> None:
    process, port = start_web(tmp_path, {}, app="tests.support.wsgi_probe:app")
    try:
        seen = probe(port)
    finally:
        process.stop()
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["SCRIPT_NAME"] == ""
    assert seen["PATH_INFO"] == "/prefix/twilio/room-events"


def test_gunicorn_trusts_proxy_headers_only_when_told(tmp_path: Path) -> None:
    config = {"TRUST_PROXY_HEADERS": "1", "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    process, port = start_web(tmp_path, config, app="tests.support.wsgi_probe:app")
    try:
        seen = probe(port)
    finally:
        process.stop()
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["SCRIPT_NAME"] == "/prefix"
    assert seen["PATH_INFO"] == "/twilio/room-events"


def test_a_signature_over_a_forwarded_scheme_is_refused(
    web: tuple[ManagedProcess, int],
) -> None:
    _, port = web
    forged = f"https://127.0.0.1:{port}/twilio/room-events"
    params = room_params("room-created")
    answer = requests.post(
        f"http://127.0.0.1:{port}/twilio/room-events",
        data=params,
        headers={"X-Twilio-Signature": sign(forged, params), "X-Forwarded-Proto": "https"},
        timeout=5,
    )
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("application/problem+json")


GREENLETS_SCRIPT = """
from gevent import monkey

monkey.patch_all()

import sys

import gevent
import redis

from workers.delivery.connections import ConnectionPerThread

pool = redis.ConnectionPool.from_url(sys.argv[1], client_name="roomrec-greenlet-test")
connections = ConnectionPerThread(pool)
for _ in range(5):  # like a web's HTTP connections: a greenlet each, 20 at a time
    gevent.joinall([gevent.spawn(lambda: connections.client().ping()) for _ in range(20)])
clients = redis.Redis.from_url(sys.argv[1]).client_list()  # the session's Redis: count ours
print(sum(1 for client in clients if client.get("name") == "roomrec-greenlet-test"))
"""


def test_under_gevent_redis_connections_do_not_pile_up_per_greenlet(redis_url: str) -> None:
    """Under gunicorn's gevent worker each HTTP connection is a greenlet; a Redis connection
    kept per greenlet would stay open for every HTTP connection ever served."""
    done = subprocess.run(
        [sys.executable, "-c", GREENLETS_SCRIPT, redis_url],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) <= 20, done.stdout
