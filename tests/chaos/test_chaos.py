"""`make chaos`: thousands of signed callbacks from simulated rooms through the real stack while
it is being broken, on each engine (:mod:`tests.chaos.engines`):

- pool processes of the workers are SIGKILLed repeatedly;
- one whole worker (main process and children) is SIGKILLed once;
- the engine fails once, while callbacks keep arriving: the single Redis is restarted; a node of
  the RabbitMQ cluster is SIGKILLed and restarted; the Sentinel group's primary is SIGKILLed
  and its replica promoted;
- the Twilio emulator answers 10% 5xx and 5% 429 and adds latency;
- the forward target is down for a while.

Then every event must have reached every handler's effect exactly once: the forward target's
deliveries by ``webhook-id`` and the stream's entries by event id. Nothing lost, nothing
duplicated, no dead letters, nothing left in the in-flight ledger or the outbox.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devtools.processes import ManagedProcess, celery_worker, children
from devtools.receiver import ForwardTarget
from emulator.client import EmulatorProcess, RoomSimulator, SimulatedRoom
from tests.chaos.engines import ENGINES, Engine, running_engine
from tests.integration.conftest import Stack, wait_for
from tests.support.report import counter
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN
from workers.delivery.dedup import event_id
from workers.pipeline.rooms import ready_event_id
from workers.state.deadletters import DeadLetterStore
from workers.state.keys import INFLIGHT_KEY, OUTBOX_KEY

pytestmark = pytest.mark.chaos

ROOMS = int(os.environ.get("CHAOS_ROOMS", "36"))
PARTICIPANTS = 5
STREAM_KEY = "chaos:events"


def play_rooms(twilio: EmulatorProcess, url: str) -> list[SimulatedRoom]:
    def play(seed: int) -> SimulatedRoom:
        simulator = RoomSimulator(
            twilio.control, url, ACCOUNT_SID, AUTH_TOKEN, rng=random.Random(seed), timeout=30
        )
        return simulator.play(participants=PARTICIPANTS)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(play, range(1000, 1000 + ROOMS)))


class Killer(threading.Thread):
    """SIGKILLs a random pool process of the given workers every few seconds."""

    def __init__(self, workers: list[ManagedProcess]) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.stopping = threading.Event()
        self.kills = 0

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stopping.wait(rng.uniform(2.0, 4.0)):
            alive = [w for w in self.workers if w.process is not None and w.process.poll() is None]
            pool = [pid for w in alive if w.process for pid in children(w.process.pid)]
            if pool:
                try:
                    os.kill(rng.choice(pool), signal.SIGKILL)
                    self.kills += 1
                except ProcessLookupError:
                    pass


# make chaos runs every engine; make test runs the single Redis (the default engine) and leaves
# the other two (about 80 s each, a RabbitMQ cluster or a Sentinel set started by the test) to
# make chaos: -m "not chaos_engines".
@pytest.fixture(
    params=[name if name == "redis" else pytest.param(name, marks=pytest.mark.chaos_engines)
            for name in ENGINES]
)  # fmt: skip
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with running_engine(request.param, tmp_path / "engine") as started:
        yield started


def test_nothing_is_lost_and_nothing_happens_twice(
    engine: Engine, start_stack: Callable[..., Stack], twilio: EmulatorProcess,
    forward_target: ForwardTarget, tmp_path: Path,
) -> None:  # fmt: skip
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
    env = engine.env()
    stack = start_stack(redis=engine.server, web_overrides=env, **config, **env)
    second = celery_worker(
        stack.worker_config, tmp_path / "worker-2.log", extra_args=["-n", "worker-2@%h"]
    )
    stack.processes.append(second)
    killer = Killer([stack.worker, second])
    killer.start()
    try:
        with ThreadPoolExecutor(max_workers=1) as background:
            sending = background.submit(play_rooms, twilio, stack.callback_url)
            time.sleep(8)
            forward_target.down = True  # the receiver's outage
            time.sleep(2)
            failure = engine.fail()  # callbacks keep arriving
            time.sleep(4)
            engine.recover()
            time.sleep(3)
            forward_target.down = False
            second.signal_group(signal.SIGKILL)  # a whole worker host lost
            second.stop()
            third = celery_worker(
                stack.worker_config, tmp_path / "worker-3.log", extra_args=["-n", "worker-3@%h"]
            )
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
        client = engine.client
        wait_for(lambda: client.xlen(STREAM_KEY) >= len(expected), 120, "stream entries")
        # Every attempt ended, every accepted event published: nothing left for the in-flight
        # ledger (Redis brokers) or a pump's outbox sweep (RabbitMQ) to publish again.
        wait_for(lambda: client.hlen(INFLIGHT_KEY) == 0, 120, "an empty in-flight ledger")
        wait_for(lambda: client.zcard(OUTBOX_KEY) == 0, 120, "an empty outbox")
        time.sleep(5)  # long enough for a late duplicate to show
    finally:
        killer.stopping.set()
        killer.join()

    deliveries = Counter(d.webhook_id for d in forward_target.deliveries)
    entries: list[tuple[str, dict[str, str]]] = client.xrange(STREAM_KEY)  # type: ignore[assignment]
    streamed = Counter(fields["id"] for _, fields in entries)
    accepted = sum(1 for sent in callbacks if sent.status == 204)
    lost = len(expected - set(deliveries)) + len(expected - set(streamed))
    duplicated_effects = sum(n - 1 for n in streamed.values() if n > 1)
    absorbed = sum(n - 1 for n in deliveries.values() if n > 1)  # same webhook-id again
    served = twilio.control.stats()["by_status"]
    retried = sum(int(n) for status, n in served.items() if status in ("429", "503")) + sum(
        1 for a in forward_target.attempts if a.status >= 300
    )
    letters = DeadLetterStore(client).list()
    logs = stack.logs()
    republished = sum(int(n) for n in re.findall(r"published (\d+) task message\(s\) again", logs))
    from_outbox = sum(int(n) for n in re.findall(r"published (\d+) accepted event\(s\)", logs))
    report = counter(f"chaos on {engine.name}")
    report.update({
        "sent": len(callbacks), "accepted": accepted, "events": len(expected),
        "processed": len(set(deliveries) & expected), "retried": retried,
        "dead-lettered": len(letters), "lost": lost, "duplicated": duplicated_effects,
        "redelivered with the same webhook-id": absorbed, "pool kills": killer.kills,
        "published again by the in-flight ledger": republished,
        "published from the outbox by a pump": from_outbox, failure: 1,
    })  # fmt: skip
    print(f"\nchaos on {engine.name}: {dict(report)}")

    assert len(callbacks) >= 2000
    assert accepted == len(callbacks)
    assert lost == 0
    assert duplicated_effects == 0
    assert set(deliveries) == expected and set(streamed) == expected
    assert letters == []
    assert killer.kills >= 3
    assert forward_target.invalid == []
