"""The engines the chaos scenario runs on, each with the fault of its own that it suffers mid-run.

An :class:`Engine` is what the stack's ``REDIS_URL`` and Celery broker point at, a client for
that Redis (the checks read the stream, the ledger, the outbox and the dead letters through
it), and :meth:`Engine.fail` / :meth:`Engine.recover`, which the scenario calls while callbacks
keep arriving:

- ``redis``: one append-only redis-server, both ``REDIS_URL`` and broker; stopped, then started
  again with its data.
- ``rabbitmq``: a private three-node RabbitMQ cluster (quorum queues) as the broker, through its
  failover URL, and a private append-only redis-server as ``REDIS_URL``; the node most of the
  stack's connections are on is SIGKILLed, then restarted with its data and rejoins.
- ``sentinel``: a Sentinel group (a primary, a replica, three sentinels), both ``REDIS_URL`` and
  broker through ``sentinel://``; the primary is SIGKILLed, the sentinels promote the replica.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from devtools.rabbitmq_node import RabbitCluster, RabbitNode, private_epmd, rabbitmq_scripts
from devtools.redis_server import RedisServer
from tests.support.sentinel import SentinelGroup, running_group
from workers.state.redis_client import redis_client

ENGINES = ("redis", "rabbitmq", "sentinel")
# A quorum queue dead-letters at least once: its dead-letter worker publishes to the target and
# waits for the confirm, trying again after this long without one. A delayed retry passes
# between the delay queues of native delayed delivery that way, and one in transit when its
# node is SIGKILLed waits out the whole timeout (RabbitMQ's default: 180 s) before it moves on.
DEAD_LETTER_CONFIG = "[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 5000}]}].\n"


class Engine:
    """The single Redis of ``make chaos`` before it ran on other engines: stopped and started."""

    name = "redis"

    def __init__(self, durable: RedisServer) -> None:
        self.durable = durable
        self.client = durable.client()

    @property
    def server(self) -> RedisServer:
        """The redis-server ``REDIS_URL`` points at (``start_stack``'s ``redis``)."""
        return self.durable

    def env(self) -> dict[str, str]:
        """Settings of the web and the workers on top of ``REDIS_URL`` = :attr:`server`."""
        return {}

    def fail(self) -> str:
        """Break the engine; what broke, for the report."""
        self.durable.stop()  # callbacks keep arriving: spooled on the web host
        return "Redis stopped"

    def recover(self) -> None:
        self.durable.start()


class RabbitEngine(Engine):
    """RabbitMQ cluster as the broker; Redis (never broken here) keeps marks, outbox, stream."""

    name = "rabbitmq"

    def __init__(self, durable: RedisServer, cluster: RabbitCluster) -> None:
        super().__init__(durable)
        self.cluster = cluster
        self.killed: RabbitNode | None = None

    def env(self) -> dict[str, str]:
        return {"CELERY_BROKER_URL": self.cluster.failover_url()}

    def busiest(self) -> RabbitNode:
        """The node most of the stack's AMQP connections are on (every node lists them all)."""
        listed = self.cluster.nodes[-1].ctl("list_connections", "port", "--formatter", "json")
        ports = Counter(int(connection["port"]) for connection in json.loads(listed))
        assert ports, "no AMQP connection to the cluster"
        (port, _), *_ = ports.most_common(1)
        (node,) = [node for node in self.cluster.nodes if node.port == port]
        return node

    def fail(self) -> str:
        self.killed = self.busiest()
        self.killed.kill()
        return f"RabbitMQ node {self.cluster.nodes.index(self.killed)} SIGKILLed"

    def recover(self) -> None:
        assert self.killed is not None
        self.killed.restart()
        names = sorted(node.name for node in self.cluster.nodes)
        deadline = time.monotonic() + 60
        while self.killed.running_nodes() != names:  # rejoined
            assert time.monotonic() < deadline, "the restarted node did not rejoin the cluster"
            time.sleep(0.5)


class SentinelEngine(Engine):
    """A Sentinel group as ``REDIS_URL`` and broker; its primary SIGKILLed, the replica promoted.

    Redis replicates asynchronously, so a primary killed at a random moment may take with it
    writes it had already acknowledged (an accepted callback's enqueue, a done mark): the README's
    "What a failover can lose". This scenario checks that the stack follows a failover losing
    nothing it was told was written, so it kills the primary at a moment it controls:
    ``CLIENT PAUSE WRITE`` first (clients' write commands and scripts wait unexecuted; the
    replication offset stops advancing), then, once the replica has processed the primary's whole
    replication stream (equal offsets), SIGKILL. Every write a client saw succeed is then on the
    promoted replica; a command still waiting in the pause was never executed, and its client
    sees the connection drop: the web spools the callback, a worker's task fails and is retried,
    as when a single Redis goes away. So the checks hold unchanged: exactly once, nothing lost.
    """

    name = "sentinel"

    def __init__(self, group: SentinelGroup) -> None:
        self.group = group
        self.client = redis_client(group.url(), sentinel=group.settings, decode_responses=True)

    @property
    def server(self) -> RedisServer:
        return self.group.primary

    def env(self) -> dict[str, str]:
        return self.group.env()  # REDIS_URL, and so CELERY_BROKER_URL, through the sentinels

    def fail(self) -> str:
        with self.group.primary.client() as primary, self.group.replica.client() as replica:
            primary.execute_command("CLIENT", "PAUSE", "30000", "WRITE")
            offset = int(primary.info("replication")["master_repl_offset"])
            deadline = time.monotonic() + 10
            while int(replica.info("replication")["master_repl_offset"]) < offset:
                assert time.monotonic() < deadline, "the replica did not catch up"
                time.sleep(0.01)
        self.group.primary.kill()
        return "Redis primary SIGKILLed"

    def recover(self) -> None:
        self.group.wait_for_failover()


@contextmanager
def running_engine(name: str, directory: Path) -> Iterator[Engine]:
    """The started engine ``name`` (one of :data:`ENGINES`); everything stopped afterwards."""
    with ExitStack() as stack:
        engine: Engine
        if name == "sentinel":
            engine = SentinelEngine(stack.enter_context(running_group(directory / "sentinel")))
        else:
            durable = RedisServer(directory / "redis", appendonly=True)
            durable.start()
            stack.callback(durable.stop)
            if name == "rabbitmq":
                rabbitmq_scripts()  # a missing rabbitmq-server named before a missing epmd
                (directory / "rabbitmq").mkdir()
                epmd_port = stack.enter_context(private_epmd(directory / "rabbitmq"))
                cluster = RabbitCluster(directory / "rabbitmq", epmd_port)
                for node in cluster.nodes:
                    (node.directory / "advanced.config").write_text(DEAD_LETTER_CONFIG)
                stack.callback(cluster.kill)
                cluster.start()
                engine = RabbitEngine(durable, cluster)
            else:
                engine = Engine(durable)
        stack.callback(engine.client.close)
        yield engine
