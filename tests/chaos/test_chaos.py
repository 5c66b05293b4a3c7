"""`make chaos`: thousands of signed callbacks from simulated rooms through the real stack while
it is being broken:

- pool processes of the workers are SIGKILLed repeatedly;
- one whole worker (main process and children) is SIGKILLed once;
- Redis is restarted once, while callbacks keep arriving;
- the Twilio emulator answers 10% 5xx and 5% 429 and adds latency;
- the forward target is down for a while.

Then every event must have reached every handler's effect exactly once: the forward target's
deliveries by ``webhook-id`` and the stream's entries by event id. Nothing lost, nothing
duplicated, no dead letters.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.processes import celery_worker, children
from devtools.redis_server import RedisServer
from emulator.client import RoomSimulator, SimulatedRoom
from tests.integration.conftest import wait_for
from tests.support.report import counter
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN
from workers.delivery.dedup import event_id
from workers.pipeline.rooms import ready_event_id
from workers.state.keys import INFLIGHT_KEY

pytestmark = pytest.mark.chaos

ROOMS = int(os.environ.get("CHAOS_ROOMS", "36"))
PARTICIPANTS = 5
STREAM_KEY = "chaos:events"
REPORT = counter("chaos")


def play_rooms(twilio, url: str) -> list[SimulatedRoom]:
    def play(seed: int) -> SimulatedRoom:
        simulator = RoomSimulator(
            twilio.control, url, ACCOUNT_SID, AUTH_TOKEN, rng=random.Random(seed), timeout=30
        )
        return simulator.play(participants=PARTICIPANTS)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(play, range(1000, 1000 + ROOMS)))


class Killer(threading.Thread):
    """SIGKILLs a random pool process of the given workers every few seconds."""

    def __init__(self, workers: list) -> None:  # type: ignore[type-arg]
        super().__init__(daemon=True)
        self.workers = workers
        self.stopping = threading.Event()
        self.kills = 0

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stopping.wait(rng.uniform(2.0, 4.0)):
            alive = [w for w in self.workers if w.process is not None and w.process.poll() is None]
            pool = [pid for w in alive for pid in children(w.process.pid)]
            if pool:
                try:
                    os.kill(rng.choice(pool), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass


def test_nothing_is_lost_and_nothing_happens_twice(start_stack, twilio, forward_target, tmp_path):
    durable = RedisServer(tmp_path / "redis", appendonly=True)
    durable.start()
    try:
        check_nothing_lost(start_stack, twilio, forward_target, tmp_path, durable)
    finally:
        durable.stop()


def check_nothing_lost(start_stack, twilio, forward_target, tmp_path, durable) -> None:  # type: ignore[no-untyped-def]
    twilio.control.add_fault("/Recordings/", "status", status=503, probability=0.10)
    twilio.control.add_fault("/Recordings/", "status", status=429, probability=0.05, retry_after=1)
    twilio.control.set_settings(latency_ms=15)
    config = {
        "HANDLERS": "log,forward,stream",
        "STREAM_KEY": STREAM_KEY,
        "VISIBILITY_TIMEOUT": "30",
        "RETRY_BACKOFF_MAX": "4",
        "TASK_MAX_RETRIES": "30",
    }
    stack = start_stack(redis=durable, **config)
    second = celery_worker(stack.worker_config, tmp_path / "worker-2.log")
    stack.processes.append(second)
    killer = Killer([stack.worker, second])
    killer.start()
    try:
        with ThreadPoolExecutor(max_workers=1) as background:
            sending = background.submit(play_rooms, twilio, stack.callback_url)
            time.sleep(8)
            forward_target.down = True  # the receiver's outage
            time.sleep(2)
            durable.stop()  # callbacks keep arriving: spooled on the web host
            time.sleep(4)
            durable.start()
            time.sleep(3)
            forward_target.down = False
            second.signal_group(signal.SIGKILL)  # a whole worker host lost
            second.stop()
            third = celery_worker(stack.worker_config, tmp_path / "worker-3.log")
            stack.processes.append(third)
            killer.workers.append(third)
            rooms = sending.result()
        callbacks = [sent for room in rooms for sent in room.callbacks]
        # Every callback's event, and one recordings_ready event per room.
        expected = {event_id(sent.params) for sent in callbacks}
        expected |= {ready_event_id(room.room_sid) for room in rooms}

        def delivered() -> set[str]:
            return {d.webhook_id for d in forward_target.deliveries}

        wait_for(lambda: delivered() >= expected, 600, f"{len(expected)} events forwarded")
        wait_for(lambda: stack.redis.xlen(STREAM_KEY) >= len(expected), 120, "stream entries")
        # Every attempt ended: nothing left for the in-flight ledger to publish again.
        wait_for(lambda: stack.redis.hlen(INFLIGHT_KEY) == 0, 120, "an empty in-flight ledger")
        time.sleep(5)  # long enough for a late duplicate to show
    finally:
        killer.stopping.set()
        killer.join()

    deliveries = Counter(d.webhook_id for d in forward_target.deliveries)
    streamed = Counter(fields["id"] for _, fields in stack.redis.xrange(STREAM_KEY))
    accepted = sum(1 for sent in callbacks if sent.status == 204)
    lost = len(expected - set(deliveries)) + len(expected - set(streamed))
    duplicated_effects = sum(n - 1 for n in streamed.values() if n > 1)
    absorbed = sum(n - 1 for n in deliveries.values() if n > 1)  # same webhook-id again
    served = twilio.control.stats()["by_status"]
    retried = sum(int(n) for status, n in served.items() if status in ("429", "503")) + sum(
        1 for a in forward_target.attempts if a.status >= 300
    )
    letters = stack.dead_letters()
    republished = sum(
        int(n) for n in re.findall(r"published (\d+) task message\(s\) again", stack.logs())
    )
    REPORT.update({
        "sent": len(callbacks), "accepted": accepted, "events": len(expected),
        "processed": len(set(deliveries) & expected), "retried": retried,
        "dead-lettered": len(letters), "lost": lost, "duplicated": duplicated_effects,
        "redelivered with the same webhook-id": absorbed, "pool kills": killer.kills,
        "published again by the in-flight ledger": republished,
    })  # fmt: skip
    print(f"\nchaos: {dict(REPORT)}")

    assert len(callbacks) >= 2000
    assert accepted == len(callbacks)
    assert lost == 0
    assert duplicated_effects == 0
    assert set(deliveries) == expected and set(streamed) == expected
    assert letters == []
    assert killer.kills >= 3
    assert forward_target.invalid == []
