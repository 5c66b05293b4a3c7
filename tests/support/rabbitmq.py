"""Private RabbitMQ for tests: the ``rabbitmq_node`` fixture and helpers that work on any node.

The nodes and clusters themselves (:class:`~devtools.rabbitmq_node.RabbitNode`,
:func:`~devtools.rabbitmq_node.running_cluster`, ...) are :mod:`devtools.rabbitmq_node`'s, which
the benchmarks share; the names the tests use are imported here.

As a pytest plugin (``tests/conftest.py`` registers it) this module gives ``rabbitmq_node``: one
node for the session, started by the first test that asks for it. A test that needs RabbitMQ
and cannot have it fails saying what is missing. :func:`private_vhost`, :func:`purge` and
:func:`ready_count` work on any node.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from kombu import Connection

from devtools.rabbitmq_node import HOST, USER, RabbitNode, running_cluster, running_node
from workers.delivery.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE, amqp_queues

__all__ = [
    "HOST",
    "RabbitNode",
    "private_vhost",
    "purge",
    "rabbitmq_node",
    "ready_count",
    "running_cluster",
]


@pytest.fixture(scope="session")
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """The session's private RabbitMQ node, started by the first test that needs it."""
    with ExitStack() as stack:
        try:
            node = stack.enter_context(running_node(tmp_path_factory.mktemp("rabbitmq")))
        except (RuntimeError, OSError) as exc:  # TimeoutError included
            pytest.fail(f"this test needs RabbitMQ: {exc}", pytrace=False)
        yield node


@contextmanager
def private_vhost(node: RabbitNode) -> Iterator[str]:
    """The URL of a new virtual host on ``node`` (guest may use it), deleted afterwards."""
    name = f"roomrec-test-{uuid.uuid4().hex[:12]}"
    node.ctl("add_vhost", name)
    try:
        node.ctl("set_permissions", "-p", name, USER, ".*", ".*", ".*")
        yield node.url(name)
    finally:
        node.ctl("delete_vhost", name)


def purge(broker_url: str, queues: tuple[str, ...] = (EVENTS_QUEUE, HANDLERS_QUEUE)) -> None:
    """Empty ``queues`` (declared as Celery declares them: quorum queues, :func:`amqp_queues`)."""
    declared = {queue.name: queue for queue in amqp_queues()}
    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        for name in queues:
            declared[name].bind(channel).declare()
            channel.queue_purge(name)


def ready_count(broker_url: str, queue: str) -> int:
    """Messages waiting on ``queue`` (not those a worker holds unacknowledged)."""
    with Connection(broker_url, connect_timeout=5) as connection:
        declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        return int(declared.message_count)
