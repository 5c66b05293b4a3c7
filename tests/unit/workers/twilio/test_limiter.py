"""The shared Twilio request limit, on a real redis-server: slots across clients (each with its
own connection, as worker processes have), leases of a killed process, wake-ups, AIMD and a
429's Retry-After."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from schemas.settings import ConfigurationError
from tests.unit.workers.helpers import worker_settings
from workers.errors import TransientError
from workers.twilio.limiter import TwilioLimiter, limiter_from_settings

Make = Callable[..., TwilioLimiter]


@pytest.fixture
def make_limiter(redis_url: str) -> Iterator[Make]:
    """``make_limiter(cap, **options)``: a limiter on a Redis connection of its own."""
    clients: list[redis.Redis] = []

    def make(cap: int, **options: float) -> TwilioLimiter:
        client = redis.Redis.from_url(redis_url, socket_timeout=30)
        clients.append(client)
        return TwilioLimiter(client, cap, **({"lease": 30.0, "wait": 10.0} | options))

    yield make
    for client in clients:
        client.close()


def test_no_more_requests_than_the_cap_are_in_flight_across_clients(make_limiter: Make) -> None:
    limiters = [make_limiter(2) for _ in range(6)]
    in_flight = peak = served = 0
    lock = threading.Lock()

    def requests(limiter: TwilioLimiter) -> None:
        nonlocal in_flight, peak, served
        for _ in range(8):
            with limiter.slot("a fetch"):
                with lock:
                    in_flight += 1
                    peak = max(peak, in_flight)
                time.sleep(0.01)
                with lock:
                    in_flight -= 1
                    served += 1

    threads = [threading.Thread(target=requests, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert served == 48
    assert peak == 2
    assert limiters[0].in_flight() == 0
    assert limiters[0].limit() == 2  # successes never raise it over the cap


def test_a_release_wakes_a_waiting_client_at_once(make_limiter: Make) -> None:
    holder = make_limiter(1)
    waiter = make_limiter(1)
    acquired = threading.Event()
    held = holder.acquire("first")

    def wait() -> None:
        with waiter.slot("second"):
            acquired.set()

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)  # the waiter is blocked on the wake-up list by now
    assert not acquired.is_set()
    released = time.monotonic()
    holder.release(held)
    assert acquired.wait(5)
    thread.join()
    # Woken by the release's push, not by its next look (every 0.25 s) at the leases.
    assert time.monotonic() - released < 0.2


def test_a_full_limit_fails_after_the_wait_as_transient(make_limiter: Make) -> None:
    make_limiter(1).acquire("held elsewhere")
    started = time.monotonic()

    with pytest.raises(TransientError, match="no Twilio request slot free within"):
        make_limiter(1, wait=0.3).acquire("a fetch of RT1")

    assert 0.25 < time.monotonic() - started < 2


HOLDER = """
import sys, time, redis
from workers.twilio.limiter import TwilioLimiter
limiter = TwilioLimiter(redis.Redis.from_url(sys.argv[1]), 1, lease=float(sys.argv[2]), wait=5)
limiter.acquire("a fetch in a process about to be killed")
print("held", flush=True)
time.sleep(60)
"""


def test_a_killed_holder_s_slot_comes_back_when_its_lease_expires(
    redis_url: str, make_limiter: Make
) -> None:
    lease = 2.0
    with subprocess.Popen([sys.executable, "-c", HOLDER, redis_url, str(lease)],
                          stdout=subprocess.PIPE, text=True) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            leased = time.monotonic()
        finally:
            holder.kill()  # SIGKILL: the process never releases its slot
    limiter = make_limiter(1, wait=lease + 5)
    assert limiter.in_flight() == 1

    with pytest.raises(TransientError):  # the dead process' lease still counts
        make_limiter(1, wait=0.2).acquire("too early")
    with limiter.slot("after the lease"):
        waited = time.monotonic() - leased
        assert limiter.in_flight() == 1  # the dead lease is gone, this one holds the slot

    assert lease - 0.5 < waited < lease + 2
    assert limiter.in_flight() == 0


def test_a_429_shrinks_the_limit_once_per_round_and_time_grows_it_back(
    make_limiter: Make,
) -> None:
    limiter = make_limiter(4, increase_every=0.5)
    first_round = [limiter.acquire("fetch") for _ in range(4)]

    first_round[0].refused(None)
    limiter.release(first_round[0])
    assert limiter.limit() == 3
    first_round[1].refused(None)  # sent before the decrease: not counted again
    limiter.release(first_round[1])
    assert limiter.limit() == 3

    later = limiter.acquire("fetch")  # the third in flight, sent after the decrease
    later.refused(None)
    limiter.release(later)
    assert limiter.limit() == 2.25  # 2 slots
    limiter.release(first_round[2])  # a success right after a change does not grow it
    assert limiter.limit() == 2.25

    time.sleep(0.6)
    limiter.release(first_round[3])
    assert limiter.limit() == 3
    held = [limiter.acquire("fetch") for _ in range(3)]
    with pytest.raises(TransientError):
        make_limiter(4, wait=0.2).acquire("a fourth")
    for slot in held:
        limiter.release(slot)


def test_retry_after_holds_every_client_back(make_limiter: Make) -> None:
    limiter = make_limiter(4)
    slot = limiter.acquire("fetch")
    slot.refused(1.0)
    limiter.release(slot)

    with pytest.raises(TransientError) as caught:
        make_limiter(4, wait=0.3).acquire("a fetch that cannot wait that long")
    assert caught.value.retry_after is not None and 0.5 < caught.value.retry_after <= 1.0

    started = time.monotonic()
    with make_limiter(4).slot("a fetch that waits"):
        assert 0.4 < time.monotonic() - started < 1.5


def test_redis_failing_before_a_request_is_transient_and_after_it_only_logged(
    make_limiter: Make, caplog: pytest.LogCaptureFixture
) -> None:
    dead = TwilioLimiter(redis.Redis(port=1, socket_connect_timeout=0.5), 2, lease=5, wait=1)

    with pytest.raises(TransientError, match="Redis failed on the Twilio request limit"):
        dead.acquire("a fetch of RT1")
    slot = make_limiter(2).acquire("a fetch of RT1")
    dead.release(slot)  # the request was answered: its answer stands

    assert "could not release a Twilio request slot" in caplog.text


def test_twilio_max_concurrency_is_read_and_checked(redis_url: str) -> None:
    settings = worker_settings(REDIS_URL=redis_url)

    assert settings.twilio_max_concurrency is None
    assert limiter_from_settings(settings) is None
    assert worker_settings(TWILIO_MAX_CONCURRENCY="").twilio_max_concurrency is None
    assert worker_settings(TWILIO_MAX_CONCURRENCY="4").twilio_max_concurrency == 4
    with pytest.raises(ConfigurationError, match="TWILIO_MAX_CONCURRENCY"):
        worker_settings(TWILIO_MAX_CONCURRENCY="0")

    settings = worker_settings(REDIS_URL=redis_url, TWILIO_MAX_CONCURRENCY="3")
    limiter = limiter_from_settings(settings)
    assert limiter is not None
    assert limiter.cap == 3
    assert limiter.lease > 3 * settings.twilio_timeout  # outlives any one request
    assert limiter.wait == settings.twilio_timeout
