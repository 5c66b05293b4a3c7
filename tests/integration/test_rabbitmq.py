"""RabbitMQ as the Celery broker (``CELERY_BROKER_URL=amqp://...``) while Redis keeps the
de-duplication marks, done marks and dead letters. Runs against the session's private RabbitMQ
node (tests/support/rabbitmq.py), in a vhost of this module's own."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import redis
import requests

from devtools.processes import ManagedProcess, celery_worker, gunicorn_web
from devtools.receiver import ForwardTarget
from devtools.redis_server import free_port
from emulator.client import EmulatorProcess, RoomSimulator
from tests.integration.conftest import FORWARD_SECRET, wait_for
from tests.support import rabbitmq
from tests.support.deploy import (
    done_per_event,
    entries,
    post_room_events,
    started_per_event,
    stop_all,
    web_config,
    worker_config,
)
from tests.support.deploy_handlers import STARTED
from tests.support.tcp_proxy import TcpProxy
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, room_params, sign
from workers.delivery.dedup import event_id
from workers.pipeline.rooms import ready_event_id

SPOOLED = "X-Roomrec-Spooled"


def start_web(
    redis_url: str, broker_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> str:
    port = free_port()
    config = web_config(redis_url, broker_url, tmp_path / "spool.sqlite3", port)
    processes.append(gunicorn_web(config, tmp_path / "web.log", port, workers=1))
    return f"http://127.0.0.1:{port}"


def start_worker(
    config: dict[str, str], name: str, tmp_path: Path, processes: list[ManagedProcess],
    concurrency: int = 1,
) -> ManagedProcess:  # fmt: skip
    worker = celery_worker(
        config, tmp_path / f"{name}.log", concurrency=concurrency, extra_args=["-n", f"{name}@%h"]
    )
    processes.append(worker)
    return worker


def post(url: str, params: dict[str, str]) -> requests.Response:
    headers = {"X-Twilio-Signature": sign(url, params)}
    return requests.post(url, data=params, headers=headers, timeout=10)


def test_a_simulated_room_reaches_the_forward_target_exactly_once(
    amqp_url: str, redis_url: str, twilio: EmulatorProcess, forward_target: ForwardTarget,
    tmp_path: Path, processes: list[ManagedProcess],
) -> None:  # fmt: skip
    web_url = start_web(redis_url, amqp_url, tmp_path, processes)
    config = worker_config(
        redis_url, amqp_url, HANDLERS="log,forward", TWILIO_VIDEO_BASE_URL=twilio.url,
        FORWARD_URLS=forward_target.url, FORWARD_SECRET=FORWARD_SECRET, FORWARD_ALLOW_HTTP="1",
    )  # fmt: skip
    start_worker(config, "worker", tmp_path, processes, concurrency=2)
    assert requests.get(f"{web_url}/readyz", timeout=5).status_code == 200

    callback_url = f"{web_url}/twilio/room-events"
    simulator = RoomSimulator(
        twilio.control, callback_url, ACCOUNT_SID, AUTH_TOKEN, rng=random.Random(11)
    )
    room = simulator.play(participants=2)
    assert {sent.status for sent in room.callbacks} == {204}
    again = post(callback_url, room.callbacks[-1].params)  # Twilio resending one
    assert again.status_code == 204 and again.headers.get("X-Roomrec-Duplicate") == "1"

    wait_for(lambda: len(forward_target.deliveries) >= len(room.callbacks) + 1, 60, "deliveries")
    delivered = Counter(d.webhook_id for d in forward_target.deliveries)
    expected = Counter(event_id(sent.params) for sent in room.callbacks)
    expected[ready_event_id(room.room_sid)] += 1  # the room's recordings_ready, once
    assert delivered == expected
    assert forward_target.invalid == []


def test_a_failed_handler_is_retried_over_rabbitmq(
    amqp_url: str, redis_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    web_url = start_web(redis_url, amqp_url, tmp_path, processes)
    config = worker_config(redis_url, amqp_url, HANDLERS="tests.support.deploy_handlers:fails_once")
    start_worker(config, "worker", tmp_path, processes, concurrency=2)

    events = post_room_events(web_url, 3)
    assert {answer.status_code for answer in events.values()} == {204}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wait_for(lambda: sum(done_per_event(client).values()) >= 3, 30, "three events handled")
    assert done_per_event(client) == Counter(list(events))
    assert {client.get(f"test:attempts:{event}") for event in events} == {"2"}
    client.close()


def test_a_killed_workers_task_goes_at_once_to_another_worker(
    amqp_url: str, redis_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    """With late acks RabbitMQ requeues a lost consumer's messages when its connection drops:
    no visibility timeout to wait for, unlike Redis."""
    web_url = start_web(redis_url, amqp_url, tmp_path, processes)
    config = worker_config(redis_url, amqp_url, TEST_HANDLER_SECONDS="2")
    workers = {}
    for name in ("first", "second"):
        worker = start_worker(config, name, tmp_path, processes)
        assert worker.process is not None
        workers[worker.process.pid] = worker

    events = post_room_events(web_url, 1)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    (_, pid), *_ = wait_for(lambda: entries(client, STARTED), 30, "the handler started")
    killed_at = time.monotonic()
    workers[pid].signal_group(signal.SIGKILL)  # the worker and its pool: no goodbye

    wait_for(lambda: done_per_event(client), 30, "the event handled by the other worker")
    assert time.monotonic() - killed_at < 20
    assert done_per_event(client) == Counter(list(events))
    assert started_per_event(client) == Counter({event: 2 for event in events})
    (survivor,) = set(workers) - {pid}
    assert [worker for _, worker in entries(client, "test:done")] == [survivor]
    client.close()


def test_the_web_outlasts_a_dropped_and_a_hung_rabbitmq_connection(
    amqp_url: str, rabbitmq_node: rabbitmq.RabbitNode, redis_url: str, tmp_path: Path,
    processes: list[ManagedProcess],
) -> None:  # fmt: skip
    with TcpProxy((rabbitmq.HOST, rabbitmq_node.port)) as proxy:
        web_url = start_web(redis_url, amqp_url.replace(
            f":{rabbitmq_node.port}/", f":{proxy.port}/"), tmp_path, processes)  # fmt: skip
        start_worker(worker_config(redis_url, amqp_url), "worker", tmp_path, processes)
        callback_url = f"{web_url}/twilio/room-events"
        sent = [room_params() for _ in range(3)]

        queued = post(callback_url, sent[0])
        assert queued.status_code == 204 and SPOOLED not in queued.headers

        proxy.cut()  # e.g. RabbitMQ restarted: the web's idle connection is dead
        requeued = post(callback_url, sent[1])
        assert requeued.status_code == 204 and SPOOLED not in requeued.headers

        proxy.freeze()  # RabbitMQ hangs: bounded waits, the callback is kept in the spool
        started = time.monotonic()
        spooled = post(callback_url, sent[2])
        assert spooled.status_code == 204 and spooled.headers.get(SPOOLED) == "1"
        assert time.monotonic() - started < 2.5
        started = time.monotonic()
        assert requests.get(f"{web_url}/readyz", timeout=10).status_code == 503
        assert time.monotonic() - started < 2.5

        proxy.thaw()
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        wait_for(lambda: sum(done_per_event(client).values()) >= 3, 60, "all three handled")
        assert done_per_event(client) == Counter(event_id(params) for params in sent)
        assert requests.get(f"{web_url}/readyz", timeout=10).status_code == 200
        client.close()
        stop_all(processes)
