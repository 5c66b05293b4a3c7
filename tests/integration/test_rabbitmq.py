"""RabbitMQ as the Celery broker (``CELERY_BROKER_URL=amqp://...``) while Redis keeps the
de-duplication marks, the outbox, done marks and dead letters. Runs against the session's private
RabbitMQ node (tests/support/rabbitmq.py), in a vhost of this module's own (or of a test's own,
where it changes the vhost's policies or looks at what Celery declares)."""

from __future__ import annotations

import json
import random
import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import requests
from celery import Celery
from kombu import Connection

from devtools.processes import ManagedProcess, celery_worker, gunicorn_web
from devtools.receiver import ForwardTarget
from devtools.redis_server import free_port
from emulator.client import EmulatorProcess, RoomSimulator
from schemas import EventMessage, load_callback
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
from workers.delivery.celery_app import (
    AMQP_EXCHANGE,
    EVENTS_QUEUE,
    HANDLERS_QUEUE,
    PROCESS_EVENT_TASK,
    make_celery,
)
from workers.delivery.choice import connect, open_broker
from workers.delivery.dedup import dedup_keys, event_id
from workers.delivery.kombu_broker import KombuBroker
from workers.delivery.outbox import GRACE
from workers.errors import BrokerUnavailable
from workers.pipeline.rooms import ready_event_id
from workers.state.keys import OUTBOX_KEY

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


# --- RabbitMQ as a first-class engine: quorum queues, native delayed delivery, the outbox,
# publisher confirms --------------------------------------------------------------------------


def vhost_of(url: str) -> str:
    return url.rsplit("/", 1)[1] or "/"


DELAY_LEVELS = [f"celery_delayed_{level}" for level in range(28)]  # native delayed delivery's


def queues_of(node: rabbitmq.RabbitNode, url: str) -> dict[str, dict[str, Any]]:
    """Each queue of ``url``'s vhost as ``rabbitmqctl list_queues`` sees it, by name (its
    message counts lag: they are statistics)."""
    listed = node.ctl("list_queues", "-p", vhost_of(url), "name", "type", "--formatter", "json")
    return {queue["name"]: queue for queue in json.loads(listed)}


def waiting(url: str, queues: list[str]) -> dict[str, int]:
    """The messages ready on each of ``queues`` now (passive declares)."""
    with Connection(url, connect_timeout=5) as connection:
        channel = connection.default_channel
        return {q: int(channel.queue_declare(queue=q, passive=True).message_count) for q in queues}


def held_by_worker(celery: Celery) -> list[Any]:
    """What the one worker holds: tasks waiting for their ETA, and tasks reserved."""
    inspect = celery.control.inspect(timeout=2, limit=1)  # one worker: no wait for others
    replies = [*(inspect.scheduled() or {}).values(), *(inspect.reserved() or {}).values()]
    assert replies, "no worker answered"
    return [task for reply in replies for task in reply]


def room_message() -> EventMessage:
    """A room-created event: handled without a Twilio fetch."""
    params = room_params()
    return EventMessage(id=event_id(params), event=load_callback(params),
                        received_at=datetime.now(UTC))  # fmt: skip


def outbox_entry(queued: EventMessage) -> str:
    return json.dumps(queued.to_json(), separators=(",", ":"))


def test_celery_declares_quorum_queues_and_its_delayed_delivery(
    rabbitmq_node: rabbitmq.RabbitNode, redis_url: str, tmp_path: Path,
    processes: list[ManagedProcess],
) -> None:  # fmt: skip
    """Replicated queues (a cluster keeps them through a node's loss), and the delay queues of
    Celery's native delayed delivery bound to this service's topic exchange: declared by the
    worker itself, on a vhost nothing else declared anything in."""
    with rabbitmq.private_vhost(rabbitmq_node) as url:
        start_worker(worker_config(redis_url, url), "worker", tmp_path, processes)
        queues = queues_of(rabbitmq_node, url)
        exchanges = json.loads(rabbitmq_node.ctl(
            "list_exchanges", "-p", vhost_of(url), "name", "type", "--formatter", "json"
        ))  # fmt: skip
        bindings = json.loads(rabbitmq_node.ctl(
            "list_bindings", "-p", vhost_of(url), "source_name", "destination_name",
            "routing_key", "--formatter", "json",
        ))  # fmt: skip
        stop_all(processes)  # before its vhost goes

    assert queues[EVENTS_QUEUE]["type"] == queues[HANDLERS_QUEUE]["type"] == "quorum"
    assert {queues[level]["type"] for level in DELAY_LEVELS} == {"quorum"}
    types = {exchange["name"]: exchange["type"] for exchange in exchanges}
    assert types[AMQP_EXCHANGE] == types["celery_delayed_delivery"] == "topic"
    routes = {(b["source_name"], b["destination_name"], b["routing_key"]) for b in bindings}
    for queue in (EVENTS_QUEUE, HANDLERS_QUEUE):
        assert (AMQP_EXCHANGE, queue, queue) in routes
        assert ("celery_delayed_delivery", AMQP_EXCHANGE, f"#.{queue}") in routes


def test_a_retry_waits_in_rabbitmq_not_in_a_worker(
    amqp_url: str, rabbitmq_node: rabbitmq.RabbitNode, redis_url: str, tmp_path: Path,
    processes: list[ManagedProcess],
) -> None:  # fmt: skip
    """Native delayed delivery: a delayed attempt waits in RabbitMQ's delay queues, neither
    ready nor unacknowledged on its own queue, so no worker holds it against RabbitMQ's
    consumer_timeout and a delay of hours is as safe as one of seconds."""
    start_worker(worker_config(redis_url, amqp_url), "worker", tmp_path, processes)
    celery = make_celery(amqp_url)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    broker = open_broker(celery, client, broker_url=amqp_url, redis_url=redis_url, dedup_ttl=600)
    soon, later = room_message(), room_message()
    published = time.monotonic()
    for queued, delay in ((soon, 8.0), (later, 2 * 3600.0)):  # 2 h: past a consumer_timeout
        broker.schedule(PROCESS_EVENT_TASK, [queued.to_json()], task_id=queued.id,
                        queue=EVENTS_QUEUE, retries=1, delay=delay)  # fmt: skip

    counts = waiting(amqp_url, [EVENTS_QUEUE, *DELAY_LEVELS])
    assert held_by_worker(celery) == []  # no countdown held in the worker
    assert time.monotonic() - published < 7  # all that within the short delay
    assert counts.pop(EVENTS_QUEUE) == 0
    assert sum(counts.values()) >= 2  # both in RabbitMQ's delay queues

    wait_for(lambda: done_per_event(client), 30, "the short retry handled")
    assert time.monotonic() - published >= 7.5  # not before its delay
    assert done_per_event(client) == Counter([soon.id])
    counts = waiting(amqp_url, [EVENTS_QUEUE, *DELAY_LEVELS])
    assert held_by_worker(celery) == []
    assert counts.pop(EVENTS_QUEUE) == 0
    assert sum(counts.values()) >= 1  # the long one waits on in RabbitMQ
    broker.close()
    celery.close()


def test_an_event_a_crashed_web_left_in_the_outbox_is_published_by_a_pump(
    amqp_url: str, redis_url: str, tmp_path: Path, processes: list[ManagedProcess]
) -> None:
    """The web's Lua step alone (marks and outbox entry), then no publish: its web died. Every
    worker's pump publishes such an entry once it is GRACE seconds old, and not before (its web
    may still be publishing it)."""
    start_worker(worker_config(redis_url, amqp_url), "worker", tmp_path, processes)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    web = connect(amqp_url, redis_url, timeout=2, dedup_ttl=600)
    assert isinstance(web, KombuBroker)
    earlier, now = room_message(), room_message()
    crashed = time.time()
    for queued, written in ((earlier, crashed - GRACE), (now, crashed)):
        assert web.outbox.admit(queued, outbox_entry(queued), written=written, client=client)

    wait_for(lambda: done_per_event(client), 15, "the older leftover published by the pump")
    assert done_per_event(client) == Counter([earlier.id])  # the newer one waits out its grace
    wait_for(lambda: len(done_per_event(client)) == 2, 30, "the newer leftover published")
    assert time.time() - crashed >= GRACE
    assert done_per_event(client) == Counter([earlier.id, now.id])
    assert client.zcard(OUTBOX_KEY) == 0
    assert web.enqueue(now) is False  # seen, and queued: Twilio's resend is a duplicate
    assert rabbitmq.ready_count(amqp_url, EVENTS_QUEUE) == 0
    web.close()
    web.celery.close()
    client.close()


def test_a_message_rabbitmq_refuses_is_never_taken_for_queued(
    rabbitmq_node: rabbitmq.RabbitNode, redis_url: str
) -> None:
    """Publisher confirms: RabbitMQ nacks a publish to a queue over its length limit
    (``reject-publish``); the web raises BrokerUnavailable (its spool keeps the event) and takes
    back the event's marks and outbox entry, where without confirms the message would just be
    gone."""
    client = redis.Redis.from_url(redis_url)
    with rabbitmq.private_vhost(rabbitmq_node) as url:
        rabbitmq.purge(url)
        limit = json.dumps({"max-length": 1, "overflow": "reject-publish"})
        pattern = f"^{re.escape(EVENTS_QUEUE)}$"
        rabbitmq_node.ctl("set_policy", "-p", vhost_of(url), "refuse", pattern, limit,
                          "--apply-to", "queues")  # fmt: skip
        policies = ("list_queues", "-p", vhost_of(url), "name", "policy")
        wait_for(lambda: "refuse" in rabbitmq_node.ctl(*policies), 10, "the policy applied")
        web = connect(url, redis_url, timeout=2, dedup_ttl=600)
        accepted: list[EventMessage] = []
        refused = None
        try:
            for _ in range(5):  # a quorum queue refuses once it holds more than its limit
                queued = room_message()
                try:
                    assert web.enqueue(queued)
                except BrokerUnavailable as exc:
                    refused = queued, exc
                    break
                accepted.append(queued)
        finally:
            web.close()
            web.celery.close()

    assert refused is not None, "RabbitMQ took every message"
    queued, error = refused
    assert "nack" in str(error)
    assert client.exists(*dedup_keys(queued)) == 0  # not seen: Twilio's resend is queued
    assert client.zcard(OUTBOX_KEY) == 0
    assert all(client.exists(*dedup_keys(taken)) == 1 for taken in accepted)
    client.close()
