"""The services the tests start for themselves (tests/support): a private RabbitMQ node that
survives SIGKILL with its durable messages, a 3-node RabbitMQ cluster that a killed node
rejoins, and a private PostgreSQL."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import psycopg
import pytest
from kombu import Connection
from pytest_postgresql.executors import PostgreSQLExecutor

from tests.support.databases import postgres_dsn
from tests.support.rabbitmq import HOST, RabbitNode, ready_count, running_cluster


def publish(url: str, queue: str, bodies: list[str]) -> None:
    """Persistent messages on a durable queue, each confirmed (so on disk): what a restart
    must keep."""
    confirmed = {"confirm_publish": True}
    with Connection(url, connect_timeout=5, transport_options=confirmed) as connection:
        producer = connection.Producer()
        connection.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
        for body in bodies:
            producer.publish(body, routing_key=queue, delivery_mode=2, retry=False)


def test_a_killed_node_restarts_with_its_durable_messages(rabbitmq_node: RabbitNode) -> None:
    queue = f"roomrec-durable-{uuid.uuid4().hex[:8]}"
    publish(rabbitmq_node.url(), queue, ["one", "two"])
    try:
        rabbitmq_node.kill()
        assert not rabbitmq_node.running
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, rabbitmq_node.port), timeout=1)
    finally:
        rabbitmq_node.restart()
    assert ready_count(rabbitmq_node.url(), queue) == 2
    with Connection(rabbitmq_node.url(), connect_timeout=5) as connection:
        connection.default_channel.queue_delete(queue)


def test_the_tools_are_not_the_machines(rabbitmq_node: RabbitNode) -> None:
    """rabbitmqctl talks to the private node (its own cookie, its own epmd), never port 5672."""
    assert rabbitmq_node.port != 5672
    assert rabbitmq_node.running_nodes() == [rabbitmq_node.name]
    assert rabbitmq_node.env["ERL_EPMD_PORT"] != "4369"


@pytest.mark.rabbitmq_cluster
def test_a_three_node_cluster_forms_and_a_killed_node_rejoins(tmp_path: Path) -> None:
    with running_cluster(tmp_path, size=3) as cluster:
        names = sorted(node.name for node in cluster.nodes)
        assert cluster.nodes[0].running_nodes() == names
        queue = f"roomrec-durable-{uuid.uuid4().hex[:8]}"
        seed, second, third = cluster.nodes
        publish(third.url(), queue, ["kept"])  # a classic queue lives on the node declaring it

        seed.kill()
        with Connection(cluster.failover_url(), connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=3)  # the failover list: on to the next
            assert connection.as_uri().endswith(f":{second.port}//")
        assert second.running_nodes() == sorted([second.name, third.name])

        third.kill()
        third.restart()
        seed.restart()
        assert second.running_nodes() == names
        assert ready_count(third.url(), queue) == 1


def test_a_private_postgresql_answers(postgres_server: PostgreSQLExecutor) -> None:
    assert postgres_server.port != 5432
    with psycopg.connect(postgres_dsn(postgres_server)) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
