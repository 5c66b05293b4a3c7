"""3. Latency: from a callback sent to its forward delivered, at a steady rate (100/s for 60 s).

The whole stack runs: gunicorn (the real web, same flags as the ingest benchmark), one Celery
worker (``log,forward,store``, prefork, concurrency 2) and the bare receiver. Every callback is
a signed ``recording-completed`` for its own recording, created in the emulator beforehand.
The sender is open-loop: callback ``i`` leaves at ``start + i / rate`` from a small pool of
threads, whatever happened to the ones before, so a slow service cannot slow the load down.
Latency is the receiver's arrival time minus the moment the callback was sent (both
``time.time()`` on this host), per ``webhook-id``. A callback not delivered within the grace
period after the last send counts as slower than every delivered one.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench import callbacks
from bench.env import BenchEnv
from bench.procs import server_settings, start_celery, start_gunicorn
from bench.stats import at_most, percentile, rounded, shown
from devtools.redis_server import free_port
from workers.metadata import Store

log = logging.getLogger(__name__)

SENDERS = 8


class Sender:
    def __init__(self, url: str) -> None:
        self.url = url
        self.local = threading.local()
        self.sent: dict[str, float] = {}
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()
        self.signer = callbacks.Signer()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        session: requests.Session = self.local.session
        return session

    def send(self, recording: callbacks.BenchRecording, due: float) -> None:
        signed = self.signer.sign(callbacks.completed_params(recording))
        headers = self.signer.headers(signed)
        time.sleep(max(0.0, due - time.time()))
        sent = time.time()
        try:
            status = self.session().post(self.url, data=signed.body, headers=headers,
                                         timeout=15).status_code  # fmt: skip
        except requests.RequestException:
            status = 0
        with self.lock:
            self.sent[recording.event_id] = sent
            self.statuses[status] = self.statuses.get(status, 0) + 1


def send_steadily(url: str, items: list[callbacks.BenchRecording], rate: float) -> Sender:
    sender = Sender(url)
    start = time.time() + 0.5
    with ThreadPoolExecutor(SENDERS) as pool:
        for index, recording in enumerate(items):
            due = start + index / rate
            # Hand work to the pool shortly before it is due: the queue stays short.
            time.sleep(max(0.0, due - time.time() - 0.05))
            pool.submit(sender.send, recording, due)
    return sender


def run(
    env: BenchEnv, *, rate: float = 100, seconds: float = 60, grace: float = 10
) -> dict[str, Any]:
    count = int(rate * seconds)
    items = env.recordings(count)
    env.flush()
    env.receiver.reset()
    database = env.path("latency.sqlite3")
    Store.open(f"sqlite:///{database}").ready()
    port = free_port()
    web = start_gunicorn("webhooks:create_app()", port, env.web_config(),
                         env.path("logs/latency-web.log"))  # fmt: skip
    try:
        worker, _ = start_celery("workers", 2, env.worker_config(database),
                                 env.path("logs/latency-worker.log"))  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}{callbacks.CALLBACK_PATH}"
            sender = send_steadily(url, items, rate)
            deadline = time.monotonic() + grace
            while env.receiver.stats()["count"] < count and time.monotonic() < deadline:
                time.sleep(0.2)
            backlog = env.backlog()  # what the worker had not got to: it fell behind
            env.sample_memory("gunicorn", web, "latency")
            env.sample_memory("celery", worker, "latency")
        finally:
            worker.stop()
    finally:
        web.stop()
    return summarise(sender, env.receiver.arrivals(), rate, seconds, grace, backlog=backlog)


def summarise(
    sender: Sender, arrivals: dict[str, float], rate: float, seconds: float, grace: float,
    *, backlog: int = 0,
) -> dict[str, Any]:  # fmt: skip
    latencies = [
        (arrivals[event] - sent) * 1000 if event in arrivals else math.inf
        for event, sent in sender.sent.items()
    ]
    delivered = sum(1 for value in latencies if value != math.inf)

    def p(q: float) -> float | None:
        value = percentile(latencies, q)
        return None if value is None or value == math.inf else rounded(value, 2)

    p99 = percentile(latencies, 99)
    undelivered = len(latencies) - delivered

    def described(q: float) -> str:
        value = p(q)
        return "beyond the run" if value is None else shown(value, ".1f", " ms")

    subject = f"p50 {described(50)}, p99 {described(99)} at {rate:g}/s for {seconds:g}s"
    if undelivered:
        subject += f"; {undelivered} of {len(latencies)} undelivered {grace:g}s after the last"
    # How fast the stack delivered while it ran: below the rate sent, it fell behind (the
    # worker's capacity on this machine at the time), which no latency figure can show.
    window = max(arrivals.values(), default=0) - min(sender.sent.values(), default=0)
    delivered_per_s = delivered / window if delivered and window > 0 else None
    words = {"subject": subject}
    if p99 == math.inf:
        behind = ""
        if backlog:
            behind = (f"; the worker fell behind: {backlog} still queued at the end, "
                      f"{shown(delivered_per_s)}/s delivered against {rate:g}/s sent")  # fmt: skip
        target = at_most("callback to forward p99", None, 100, " ms", **words) | {
            "passed": False,
            "note": f"{undelivered} not delivered within {grace:g}s of the last send: "
            f"p99 is beyond that{behind}",
        }
    else:
        target = at_most("callback to forward p99", p99, 100, " ms", **words)
    return {
        "method": {
            "rate_per_s": rate,
            "seconds": seconds,
            "senders": SENDERS,
            "worker": "celery worker --pool prefork --concurrency 2, HANDLERS=log,forward,store",
            "web": server_settings(),
            "grace_s": grace,
        },
        "figures": {
            "sent": len(sender.sent),
            "statuses": {str(status): count for status, count in sorted(sender.statuses.items())},
            "delivered": delivered,
            "undelivered_after_grace": undelivered,
            "queued_after_grace": backlog,
            "delivered_per_s": rounded(delivered_per_s, 1),
            "p50_ms": p(50),
            "p90_ms": p(90),
            "p99_ms": p(99),
            "max_ms": p(100),
        },
        "targets": [target],
    }
