"""What the benchmarks share in one run, started on first use and stopped at the end: a
temporary directory, a private append-only redis-server, the Twilio emulator holding the
recordings the callbacks announce, the bare forward receiver, and the memory samples taken
of the processes under test. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import base64
import logging
import random
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from redis import Redis

from bench import callbacks
from bench.callbacks import ACCOUNT_SID, AUTH_TOKEN, BenchRecording
from bench.procs import tree_memory
from bench.receiver import ReceiverProcess
from devtools.processes import ManagedProcess
from devtools.redis_server import RedisServer
from emulator.client import EmulatorControl, EmulatorProcess
from workers.delivery.celery_app import EVENTS_QUEUE, HANDLERS_QUEUE

log = logging.getLogger(__name__)

FORWARD_SECRET = "whsec_" + base64.b64encode(b"roomrec-benchmark-forward-key-32").decode()
# kombu's Redis transport keeps unacknowledged messages here until they are acknowledged.
UNACKED_KEYS = ("unacked",)
DELAYED_KEYS = tuple(f"roomrec:delayed:{queue}" for queue in (EVENTS_QUEUE, HANDLERS_QUEUE))
CREATE_THREADS = 4


class BenchEnv:
    def __init__(self, *, keep: bool = False, seed: int = 5) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="roomrec-bench-"))
        self.keep = keep
        self.rng = random.Random(seed)
        self.stack = ExitStack()
        self.memory: list[dict[str, Any]] = []
        self._redis: RedisServer | None = None
        self._emulator: EmulatorProcess | None = None
        self._receiver: ReceiverProcess | None = None
        self._pool: list[BenchRecording] = []

    # -- shared services
    @property
    def redis(self) -> RedisServer:
        if self._redis is None:
            server = RedisServer(self.directory / "redis", appendonly=True)
            server.start()  # appendonly yes, appendfsync everysec (Redis' default), noeviction
            self.stack.callback(server.stop)
            self._redis = server
        return self._redis

    def client(self) -> Redis:
        return Redis(port=self.redis.port, decode_responses=True)

    def flush(self) -> None:
        """Empty Redis: queues, unacknowledged and delayed messages, the in-flight ledger
        (``roomrec:inflight*``), de-duplication and done marks, room state, dead letters."""
        with self.client() as client:
            client.flushall()
            left = client.dbsize()
        if left:
            raise RuntimeError(f"Redis still holds {left} keys after FLUSHALL")

    def reset(self) -> None:
        """Nothing a previous benchmark left behind reaches the next one: Redis emptied, the
        receiver's arrivals forgotten, the emulator without faults, added latency, concurrency
        limit or request log. Its recordings stay: they are the shared pool. Services not
        started yet are left alone."""
        if self._redis is not None:
            self.flush()
        if self._receiver is not None:
            self.receiver.reset()
        if self._emulator is not None:
            control = self.emulator.control
            control.clear_faults()
            control.set_settings(max_concurrency=None, latency_ms=0, throttle_retry_after=None)
            control.clear_requests()

    def backlog(self) -> int:
        """Task messages queued, being worked on (unacknowledged) or waiting as a retry."""
        with self.client() as client:
            pipe = client.pipeline(transaction=False)
            for queue in (EVENTS_QUEUE, HANDLERS_QUEUE):
                pipe.llen(queue)
            for key in UNACKED_KEYS:
                pipe.hlen(key)
            for key in DELAYED_KEYS:
                pipe.zcard(key)
            return sum(pipe.execute())

    def queue_idle(self) -> bool:
        """Nothing queued, nothing being worked on, no retry waiting."""
        return self.backlog() == 0

    @property
    def emulator(self) -> EmulatorProcess:
        if self._emulator is None:
            self._emulator = EmulatorProcess(ACCOUNT_SID, AUTH_TOKEN).start()
            self.stack.callback(self._emulator.stop)
        return self._emulator

    @property
    def receiver(self) -> ReceiverProcess:
        if self._receiver is None:
            self._receiver = ReceiverProcess()
            self.stack.callback(self._receiver.stop)
        return self._receiver

    def recordings(self, count: int) -> list[BenchRecording]:
        """``count`` completed recordings held by the emulator (created once, reused)."""
        missing = count - len(self._pool)
        if missing > 0:
            fresh = callbacks.recordings(self.rng, missing)
            log.info("creating %d recordings in the emulator", missing)
            url = self.emulator.url

            def create(part: list[BenchRecording]) -> None:
                with EmulatorControl(url) as control:
                    for recording in part:
                        control.create_recording(**callbacks.emulator_fields(recording))

            parts = [fresh[index::CREATE_THREADS] for index in range(CREATE_THREADS)]
            with ThreadPoolExecutor(CREATE_THREADS) as pool:
                list(pool.map(create, parts))
            self._pool += fresh
        return self._pool[:count]

    # -- configuration of the processes under test
    def path(self, name: str) -> Path:
        return self.directory / name

    def web_config(self) -> dict[str, str]:
        return {
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": callbacks.PUBLIC_BASE_URL,
            "REDIS_URL": self.redis.url,
            "SPOOL_PATH": str(self.path("spool.sqlite3")),
            "LOG_LEVEL": "INFO",
        }

    def worker_config(self, database: Path, **overrides: str) -> dict[str, str]:
        return {
            "REDIS_URL": self.redis.url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_VIDEO_BASE_URL": self.emulator.url,
            "HANDLERS": "log,forward,store",
            "FORWARD_URLS": self.receiver.hook_url,
            "FORWARD_SECRET": FORWARD_SECRET,
            "FORWARD_ALLOW_HTTP": "1",
            "MEDIA_ALLOWED_NETWORKS": "127.0.0.0/8",  # the emulator's media is on loopback
            "DATABASE_URL": f"sqlite:///{database}",
            # The worker's Prometheus exporter binds every interface; the harness stays on
            # loopback, so it is off (task metrics are still counted in each process).
            "METRICS_PORT": "0",
            "LOG_LEVEL": "INFO",
        } | overrides

    # -- memory
    def sample_memory(self, kind: str, process: ManagedProcess, after: str) -> None:
        """Note the RSS of ``process`` and its children (``kind``: gunicorn or celery)."""
        for sample in tree_memory(process):
            self.memory.append({"kind": kind, **sample, "after": after})

    def close(self) -> None:
        self.stack.close()
        if not self.keep:
            shutil.rmtree(self.directory, ignore_errors=True)
