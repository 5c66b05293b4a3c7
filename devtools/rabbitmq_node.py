"""A private RabbitMQ (tests, benchmarks): nodes and clusters run from the machine's
``rabbitmq-server``.

A :class:`RabbitNode` is one ``rabbitmq-server`` on free loopback ports (AMQP and Erlang
distribution) under its own node name, with its own config, data, logs and HOME (holding its
``.erlang.cookie``), registered with a private epmd (:func:`private_epmd`) rather than the
machine's on 4369: the machine's RabbitMQ and other runs never meet it. It can be killed with
SIGKILL and restarted with its data. A :class:`RabbitCluster` is N such nodes on one epmd and
one cookie, joined with ``rabbitmqctl``. :func:`running_node` and :func:`running_cluster` start
them and throw them away afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kombu import Connection

from devtools.processes import ManagedProcess
from devtools.redis_server import free_port

HOST = "127.0.0.1"
USER = PASSWORD = "guest"  # RabbitMQ's default user, allowed from loopback only
# Debian's /usr/sbin/rabbitmq-server and rabbitmqctl are wrappers that, run by root, switch to
# the rabbitmq user (and its cookie): the scripts themselves are beside the wrapper.
DEBIAN_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
MISSING = "make test installs Debian's rabbitmq-server when run as root; else apt-get install it"


def rabbitmq_scripts() -> Path:
    """The directory holding ``rabbitmq-server`` and ``rabbitmqctl`` themselves."""
    on_path = shutil.which("rabbitmq-server")
    candidates = [Path(os.path.realpath(on_path)).parent] if on_path else []
    for directory in [*candidates, DEBIAN_SCRIPTS]:
        if all(os.access(directory / name, os.X_OK) for name in ("rabbitmq-server", "rabbitmqctl")):
            return directory
    raise RuntimeError(f"no rabbitmq-server on PATH nor in {DEBIAN_SCRIPTS} ({MISSING})")


def _wait_for_port(port: int, process: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            if process.process is None or process.process.poll() is not None:
                raise RuntimeError(f"{process.args[0]} exited:\n{process.log()[-3000:]}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{process.args[0]} not listening on {port} after {timeout}s"
                ) from None
            time.sleep(0.05)


def _wait_until_free(ports: tuple[int, ...], timeout: float = 10) -> None:
    """Until nothing listens on ``ports``: a killed process's children die after it is reaped."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
                try:
                    probe.bind((HOST, port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"port {port} still taken {timeout}s on") from None
            time.sleep(0.02)


@contextmanager
def private_epmd(directory: Path) -> Iterator[int]:
    """An epmd (Erlang's name server) of our own on a free loopback port, yielded; the nodes and
    ``rabbitmqctl`` given its port (``ERL_EPMD_PORT``) register and look up names there only."""
    binary = shutil.which("epmd")
    if binary is None:
        raise RuntimeError(f"no epmd on PATH (Erlang's; rabbitmq-server brings it: {MISSING})")
    port = free_port()
    epmd = ManagedProcess(
        [binary, "-port", str(port), "-address", HOST], {}, directory / f"epmd-{port}.log"
    )
    epmd.start()
    try:
        _wait_for_port(port, epmd, 10)
        yield port
    finally:
        epmd.stop()


class RabbitNode:
    """One ``rabbitmq-server`` in ``directory``, on free loopback ports, registered with the epmd
    on ``epmd_port``. Its data (queues, messages, vhosts, cluster membership) survives
    :meth:`kill` and :meth:`restart`; ``cookie`` is shared by the nodes of a cluster."""

    def __init__(self, directory: Path, epmd_port: int, *, cookie: str | None = None) -> None:
        self.scripts = rabbitmq_scripts()
        self.directory = directory
        self.name = f"roomrec-{uuid.uuid4().hex[:10]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        home = directory / "home"
        home.mkdir(parents=True)
        cookie_file = home / ".erlang.cookie"
        cookie_file.write_text(cookie or secrets.token_hex(20))
        cookie_file.chmod(0o400)  # Erlang refuses a cookie others may read
        (directory / "enabled_plugins").write_text("[].\n")  # no plugins: a quicker start
        (directory / "rabbitmq-env.conf").write_text("")  # not the machine's /etc/rabbitmq one
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.default = {HOST}:{self.port}\n")
        self.env = {
            "HOME": str(home),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_FLAGS": "",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),  # none
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            # The distribution port on loopback only, as the AMQP listener.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.process: ManagedProcess | None = None

    def url(self, vhost: str = "/") -> str:
        return f"amqp://{USER}:{PASSWORD}@{HOST}:{self.port}/{'' if vhost == '/' else vhost}"

    @property
    def running(self) -> bool:
        popen = self.process.process if self.process is not None else None
        return popen is not None and popen.poll() is None

    def spawn(self) -> None:
        """Launch the node without waiting for it (:meth:`wait_ready`)."""
        self.process = ManagedProcess(
            [str(self.scripts / "rabbitmq-server")], self.env, self.directory / "server.log"
        )
        self.process.start()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the node accepts AMQP connections; killed if it does not in ``timeout``."""
        assert self.process is not None, "spawn() first"
        try:
            _wait_for_port(self.port, self.process, timeout)
            with Connection(self.url(), connect_timeout=5) as connection:
                connection.connect()
        except BaseException:
            self.kill()
            raise

    def start(self, timeout: float = 60) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM: RabbitMQ closes its clients' connections first)."""
        if self.process is not None:
            self.process.stop(timeout=30)
            self.process = None
            _wait_until_free((self.port, self.dist_port))

    def kill(self) -> None:
        """SIGKILL the node's processes: no goodbye to clients or peers."""
        if self.process is not None:
            self.process.signal_group(signal.SIGKILL)
            self.process.stop()  # reaps the script; the Erlang VM, its child, dies a bit later
            self.process = None
            _wait_until_free((self.port, self.dist_port))

    def restart(self, timeout: float = 60) -> None:
        """Start the node again (stopped first if running) with the same name, ports and data."""
        self.stop()
        self.start(timeout)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n <this node> *args``'s output; a failure raises, quoting it."""
        done = subprocess.run(
            [str(self.scripts / "rabbitmqctl"), "-n", self.name, *args], env=os.environ | self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name}: {done.stderr}")
        return done.stdout

    def running_nodes(self) -> list[str]:
        """The names of the cluster's running nodes, as this node sees them."""
        status = json.loads(self.ctl("cluster_status", "--formatter", "json"))
        return sorted(status["running_nodes"])


class RabbitCluster:
    """``size`` nodes in ``directory`` on the epmd on ``epmd_port`` and one cookie; the first one
    is the seed that the others join."""

    def __init__(self, directory: Path, epmd_port: int, size: int = 3) -> None:
        cookie = secrets.token_hex(20)
        self.nodes = [
            RabbitNode(directory / f"node{index}", epmd_port, cookie=cookie)
            for index in range(size)
        ]

    def start(self, timeout: float = 60) -> None:
        """All nodes booted at once, then each but the seed joined to it, one at a time."""
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_ready(timeout)
        seed, *others = self.nodes
        for node in others:
            node.ctl("stop_app")
            node.ctl("join_cluster", seed.name)
            node.ctl("start_app")

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def urls(self, vhost: str = "/") -> list[str]:
        return [node.url(vhost) for node in self.nodes]

    def failover_url(self, vhost: str = "/") -> str:
        """Every node's URL, ``;``-separated: kombu (and so Celery) tries them in turn."""
        return ";".join(self.urls(vhost))


@contextmanager
def running_node(directory: Path) -> Iterator[RabbitNode]:
    """A started node on its own epmd; killed at the end (its data is thrown away)."""
    rabbitmq_scripts()  # a missing rabbitmq-server named before a missing epmd
    with private_epmd(directory) as epmd_port:
        node = RabbitNode(directory / "node", epmd_port)
        node.start()
        try:
            yield node
        finally:
            node.kill()


@contextmanager
def running_cluster(directory: Path, size: int = 3) -> Iterator[RabbitCluster]:
    """A started ``size``-node cluster on its own epmd; killed at the end."""
    rabbitmq_scripts()
    with private_epmd(directory) as epmd_port:
        cluster = RabbitCluster(directory, epmd_port, size)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.kill()
