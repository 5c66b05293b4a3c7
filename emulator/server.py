"""Serve the emulator on a real socket until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from werkzeug.serving import make_server

from emulator.app import create_emulator_app
from emulator.state import EmulatorState


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(
    state: EmulatorState,
    host: str,
    port: int,
    *,
    on_ready: Callable[[str], None],
    log_requests: bool = False,
) -> None:
    """Bind ``host:port`` (0 picks a free port), call ``on_ready(url)``, serve until signalled."""
    if not log_requests:
        # Set before werkzeug's first log call so it does not install its own INFO handler.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, create_emulator_app(state), threaded=True)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {
        signum: signal.signal(signum, _on_signal) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    worker = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="emulator-server", daemon=True
    )
    worker.start()
    try:
        on_ready(_url(host, server.server_port))
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
        worker.join()
        server.server_close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
