"""The machine's RabbitMQ (127.0.0.1:5672, guest/guest) for tests, when it is there.

Each test module gets a private virtual host (``rabbitmqctl``, when this user may run it), so
concurrent runs never share queues; without ``rabbitmqctl`` it is the default vhost, and the
roomrec queues are purged before each test.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from kombu import Connection

from workers.delivery.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE

HOST, PORT = "127.0.0.1", 5672
USER = PASSWORD = "guest"


def url(vhost: str = "/") -> str:
    return f"amqp://{USER}:{PASSWORD}@{HOST}:{PORT}/{'' if vhost == '/' else vhost}"


def unavailable() -> str | None:
    """Why RabbitMQ cannot be used here, or None when it can."""
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError as exc:
        return f"no RabbitMQ at {HOST}:{PORT} ({exc})"
    try:
        with Connection(url(), connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=0, timeout=3)
    except Exception as exc:  # any refusal: wrong credentials, not AMQP, ...
        return f"RabbitMQ at {HOST}:{PORT} refuses {USER}/{PASSWORD}: {exc!r}"
    return None


def _rabbitmqctl(*args: str) -> bool:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        return False
    done = subprocess.run([binary, *args], capture_output=True, timeout=60, check=False)
    return done.returncode == 0


@contextmanager
def private_vhost() -> Iterator[str]:
    """The URL of a new virtual host, deleted afterwards (the default one without rabbitmqctl)."""
    name = f"roomrec-test-{uuid.uuid4().hex[:12]}"
    if not (
        _rabbitmqctl("add_vhost", name)
        and _rabbitmqctl("set_permissions", "-p", name, USER, ".*", ".*", ".*")
    ):
        yield url()
        return
    try:
        yield url(name)
    finally:
        _rabbitmqctl("delete_vhost", name)


def vhost_or_skip() -> Iterator[str]:
    """For a module-scoped fixture: the URL of a private vhost, or a skip naming the reason."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    with private_vhost() as broker_url:
        yield broker_url


def purge(broker_url: str, queues: tuple[str, ...] = (EVENTS_QUEUE, HANDLERS_QUEUE)) -> None:
    """Empty ``queues`` (declared as Celery declares them when missing)."""
    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for queue in queues:
            channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            channel.queue_purge(queue)


def ready_count(broker_url: str, queue: str) -> int:
    """Messages waiting on ``queue`` (not those a worker holds unacknowledged)."""
    with Connection(broker_url, connect_timeout=5) as connection:
        declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        return int(declared.message_count)
