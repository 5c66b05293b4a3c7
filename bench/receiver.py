"""A bare forward receiver in its own process: answers every POST 200 at once and notes when
each ``webhook-id`` first arrived (``time.time()``, comparable across processes on one host).

It verifies no signature (the forward handler's signing is measured; checking it is the
receiver's cost, not the service's) and runs apart from the benchmark driver so that neither
steals the other's interpreter. ``GET /_stats`` gives the count and first/last arrival,
``GET /_arrivals`` every id's arrival, ``POST /_reset`` forgets them.

Run as ``python -m bench.receiver``: prints ``{"url": ...}`` once listening.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from devtools.processes import REPO

_lock = threading.Lock()
_arrivals: dict[str, float] = {}
_posts = [0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the forward handler reuses its connection
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's
    # delayed ACK: 40 ms per delivery, which measured the receiver instead of roomrec.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path == "/_reset":
            with _lock:
                _arrivals.clear()
                _posts[0] = 0
            self._answer(200, {})
            return
        arrived = time.time()
        webhook_id = self.headers.get("webhook-id") or ""
        with _lock:
            _posts[0] += 1
            _arrivals.setdefault(webhook_id, arrived)
        self._answer(200, {"ok": True})

    def do_GET(self) -> None:
        with _lock:
            if self.path == "/_arrivals":
                body: Any = dict(_arrivals)
            else:
                times = _arrivals.values()
                body = {
                    "count": len(_arrivals),
                    "posts": _posts[0],
                    "first": min(times, default=None),
                    "last": max(times, default=None),
                }
        self._answer(200, body)


def serve() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_port}"}), flush=True)
    server.serve_forever()


class ReceiverProcess:
    """The receiver as a subprocess of the driver."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver"], cwd=REPO, stdout=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the bench receiver did not start")
        self.url = str(json.loads(line)["url"])
        self.hook_url = self.url + "/hooks"

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.session.get(self.url + "/_stats", timeout=10).json()
        return result

    def arrivals(self) -> dict[str, float]:
        result: dict[str, float] = self.session.get(self.url + "/_arrivals", timeout=30).json()
        return result

    def reset(self) -> None:
        self.session.post(self.url + "/_reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        self.session.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


if __name__ == "__main__":
    serve()
