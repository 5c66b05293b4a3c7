"""The ingest harness waits for the requests wrk cut off before it reads or empties Redis."""

from __future__ import annotations

import threading
import time

from bench.env import BenchEnv
from bench.ingest import settle


def test_settle_returns_only_once_redis_takes_no_new_key() -> None:
    env = BenchEnv()
    try:
        env.flush()
        stop = threading.Event()

        def late_requests() -> None:  # what the web still queues after wrk has stopped
            with env.client() as client:
                for number in range(10):
                    client.set(f"roomrec:seen:{number}", 1)
                    time.sleep(0.05)
            stop.set()

        writer = threading.Thread(target=late_requests)
        writer.start()
        started = time.monotonic()
        settle(env, quiet=0.2)
        waited = time.monotonic() - started
        finished_first = stop.is_set()
        writer.join()
        assert finished_first  # it did not return while keys were still arriving
        assert waited >= 0.45 + 0.2
        with env.client() as client:
            assert client.dbsize() == 10
    finally:
        env.close()


def test_settle_on_a_quiet_redis_takes_the_quiet_period_only() -> None:
    env = BenchEnv()
    try:
        env.flush()
        started = time.monotonic()
        settle(env, quiet=0.2)
        assert 0.2 <= time.monotonic() - started < 1.0
    finally:
        env.close()
