"""Graceful shutdown, as ``docker compose stop`` does it (SIGTERM): gunicorn finishes the
requests in flight; a worker finishes its running tasks and returns the ones it had reserved,
which another worker then runs. Nothing is lost, nothing runs twice."""

from __future__ import annotations

import signal
import socket
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis

from devtools.processes import ManagedProcess, celery_worker, gunicorn_web
from devtools.redis_server import free_port
from tests.integration.conftest import wait_for
from tests.support.deploy import (
    done_per_event,
    entries,
    post_room_events,
    started_per_event,
    web_config,
    worker_config,
)
from tests.support.deploy_handlers import STARTED
from tests.support.queues import task_messages
from tests.support.twilio import room_params, sign
from workers.delivery.celery_app import EVENTS_QUEUE
from workers.delivery.dedup import event_id


def accepted(server_port: int, client_port: int) -> bool:
    """Whether a process accept()ed our connection: until then the kernel holds it in the
    listen backlog, and /proc/net/tcp shows it with inode 0."""
    wanted = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            return fields[9] != "0"
    return False


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp")
def test_sigterm_lets_gunicorn_finish_a_request_in_flight(
    redis_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    port = free_port()
    web = gunicorn_web(
        web_config(redis_url, redis_url, tmp_path / "spool.sqlite3", port), tmp_path / "web.log",
        port,
        workers=1,
    )  # fmt: skip
    processes.append(web)
    assert web.process is not None
    url = f"http://127.0.0.1:{port}/twilio/room-events"
    params = room_params()
    body = urlencode(params).encode()
    head = (
        f"POST /twilio/room-events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {sign(url, params)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()

    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(head + body[:20])  # the request is in flight: its body is incomplete
        client_port = client.getsockname()[1]
        wait_for(lambda: accepted(port, client_port), 10, "gunicorn's worker took the request")
        web.process.send_signal(signal.SIGTERM)
        web.wait_for_log("Handling signal: term")
        client.sendall(body[20:])
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 204"), answer[:300]
    assert web.process.wait(30) == 0
    queued = task_messages(redis_url, EVENTS_QUEUE)
    assert [message["id"] for message in queued] == [event_id(params)]


def test_sigterm_lets_a_worker_finish_running_tasks_and_return_reserved_ones(
    broker_url: str, redis_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    port = free_port()
    web = gunicorn_web(
        web_config(redis_url, broker_url, tmp_path / "spool.sqlite3", port), tmp_path / "web.log",
        port,
        workers=1,
    )  # fmt: skip
    processes.append(web)
    config = worker_config(redis_url, broker_url, TEST_HANDLER_SECONDS="2")
    # A prefetch of 4 per process: the worker holds more tasks than it runs at once.
    first = celery_worker(
        config, tmp_path / "first.log", concurrency=2,
        extra_args=["-n", "first@%h", "--prefetch-multiplier", "4"],
    )  # fmt: skip
    processes.append(first)
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    events = post_room_events(f"http://127.0.0.1:{port}", 6)
    assert {answer.status_code for answer in events.values()} == {204}
    wait_for(lambda: len(entries(client, STARTED)) >= 2, 30, "two handlers running")
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(30) == 0
    assert "Warm shutdown" in first.log()

    # The tasks running at SIGTERM finished; the others were neither run nor lost.
    started_by_first = started_per_event(client)
    assert sum(started_by_first.values()) == 2
    assert done_per_event(client) == started_by_first
    received = first.log().count("] received")
    assert received > 2, "the worker held no reserved task: the test proves nothing"

    second = celery_worker(
        config, tmp_path / "second.log", concurrency=2, extra_args=["-n", "second@%h"]
    )
    processes.append(second)
    wait_for(lambda: sum(done_per_event(client).values()) >= 6, 60, "all six events handled")
    assert done_per_event(client) == Counter(list(events))
    assert started_per_event(client) == Counter(list(events))  # none ran twice
    client.close()
