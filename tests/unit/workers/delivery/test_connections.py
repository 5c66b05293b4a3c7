"""workers.delivery.connections.ConnectionPerThread against real redis-servers: the web's broker
gives each thread a connection of its own, made on first use, and survives Redis being down at
start, restarting, and a fork."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from devtools.redis_server import RedisServer, free_port
from schemas import EventMessage, load_callback
from schemas.settings import DEFAULT_DEDUP_TTL
from tests.support.twilio import room_params
from workers.delivery.celery_app import EVENTS_QUEUE
from workers.delivery.choice import connect
from workers.delivery.dedup import event_id
from workers.delivery.redis_broker import RedisBroker
from workers.errors import BrokerUnavailable


def _message() -> EventMessage:
    params = room_params()
    return EventMessage(
        id=event_id(params), event=load_callback(params), received_at=datetime.now(UTC)
    )


def _enqueuer(url: str) -> RedisBroker:
    broker = connect(url, url, timeout=1, dedup_ttl=DEFAULT_DEDUP_TTL)
    assert isinstance(broker, RedisBroker)
    return broker


def test_each_thread_has_its_own_connection_and_keeps_it(redis_url: str) -> None:
    enqueuer = _enqueuer(redis_url)
    ids: dict[str, set[int]] = {}

    def enqueue_three(name: str) -> None:
        for _ in range(3):
            assert enqueuer.enqueue(_message())
            ids.setdefault(name, set()).add(enqueuer.connections.client().client_id())

    try:
        threads = [threading.Thread(target=enqueue_three, args=(f"t{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        enqueue_three("main")

        assert all(len(found) == 1 for found in ids.values())  # one connection per thread
        assert len(set().union(*ids.values())) == 4  # and none shared
        with redis.Redis.from_url(redis_url) as client:
            assert client.llen(EVENTS_QUEUE) == 12
    finally:
        enqueuer.close()


def test_an_enqueuer_made_while_redis_is_down_works_once_it_is_up(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, port=free_port())
    enqueuer = _enqueuer(server.url)  # nothing listens yet: the web must still start
    try:
        with pytest.raises(BrokerUnavailable):
            enqueuer.enqueue(_message())
        server.start()

        assert enqueuer.enqueue(_message()) is True
    finally:
        enqueuer.close()
        server.stop()


def test_after_a_redis_restart_the_connection_is_made_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    enqueuer = _enqueuer(server.url)
    try:
        assert enqueuer.enqueue(_message()) is True
        server.stop()
        server.start()

        # The first command may find the old connection dead (the caller spools that event);
        # the one after it connects again.
        outcomes = []
        for _ in range(2):
            try:
                outcomes.append(enqueuer.enqueue(_message()))
            except BrokerUnavailable:
                outcomes.append(None)
        assert outcomes[-1] is True
    finally:
        enqueuer.close()
        server.stop()


def test_a_forked_child_makes_its_own_connection(redis_url: str) -> None:
    enqueuer = _enqueuer(redis_url)
    try:
        assert enqueuer.enqueue(_message())
        parent_id = enqueuer.connections.client().client_id()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: what a gunicorn worker forked after first use would do
            code = 1
            try:
                os.close(read)
                enqueuer.enqueue(_message())
                os.write(write, str(enqueuer.connections.client().client_id()).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read) as pipe:
            child_id = int(pipe.read() or -1)
        _, status = os.waitpid(pid, 0)

        assert os.waitstatus_to_exitcode(status) == 0
        assert child_id not in (-1, parent_id)
        assert enqueuer.enqueue(_message())  # the parent's connection still works
        assert enqueuer.connections.client().client_id() == parent_id
    finally:
        enqueuer.close()
