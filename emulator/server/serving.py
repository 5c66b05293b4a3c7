"""Serve the emulator on a real socket until SIGTERM or SIGINT.

cheroot, not werkzeug's development server: it keeps HTTP/1.1 connections alive as Twilio does
(werkzeug closes every one, so each API call paid a TCP connection and a thread spawn on both
sides), runs requests on a fixed pool of threads, and parks idle keep-alive connections in a
selector, where they hold no thread.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from types import FrameType
from typing import TYPE_CHECKING, Any

from cheroot import wsgi
from cheroot.server import HTTPConnection, HTTPServer

from emulator.model.state import EmulatorState
from emulator.server.app import create_emulator_app
from emulator.server.hooks import DROP_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Requests in progress at once: beyond it they wait in a queue, unseen by the concurrency
# limit, so it stays well above the concurrent clients of the tests and benchmarks.
THREADS = 32
# Seconds a socket may block (a stalled reader of a media stream, a half-sent request), and
# seconds a keep-alive connection may stay idle before the server closes it.
SOCKET_TIMEOUT = 30
KEEP_ALIVE_LIMIT = 256  # idle keep-alive connections kept; past it, answers close theirs
LISTEN_BACKLOG = 128  # werkzeug's; cheroot's 5 would drop bursts of new connections' SYNs
SHUTDOWN_GRACE = 1  # seconds in-flight requests get to finish on SIGTERM
# How often the selector wakes to close expired connections, and so how long stopping waits
# for it: werkzeug's poll interval here, where cheroot's 0.5 s would slow every test's stop.
EXPIRY_CHECK = 0.05

log = logging.getLogger(__name__)
access_log = logging.getLogger("emulator.access")


class _SocketWriter:
    """Writes each chunk of a response with one ``sendall``.

    cheroot's own writer copies every chunk through a pure-Python buffer (``_pyio``), and the
    rest of it again after each partial send: media streamed 10-20 % slower than through
    werkzeug's server, the more so the larger the chunks.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.bytes_written = 0  # read by cheroot's statistics

    def write(self, data: bytes) -> int:
        self._sock.sendall(data)
        self.bytes_written += len(data)
        return len(data)


class _Connection(HTTPConnection):
    def __init__(self, owner: HTTPServer, sock: socket.socket, makefile: Any) -> None:
        super().__init__(owner, sock, makefile)
        self.wfile = _SocketWriter(sock)


class _Server(wsgi.Server):
    ConnectionClass = _Connection

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        # cheroot writes every message to stderr whatever its level; logging filters them.
        log.log(level, "%s", msg, exc_info=traceback)


class _AccessLog:
    """One line per request on stderr (``--log-requests``), as werkzeug's server wrote them,
    less the query string: it carries the signature of media URLs."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status = "-"

        def start(line: str, headers: Any, exc_info: Any = None) -> Any:
            nonlocal status
            status = line.split(" ", 1)[0]
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, start)
        finally:
            access_log.info(
                '%s - - [%s] "%s %s %s" %s',
                environ.get("REMOTE_ADDR", "-"),
                time.strftime("%d/%b/%Y %H:%M:%S"),
                environ["REQUEST_METHOD"],
                environ["PATH_INFO"],
                environ["SERVER_PROTOCOL"],
                "dropped" if environ.get(DROP_KEY) else status,
            )


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
    app: WSGIApplication = create_emulator_app(state)
    if log_requests:
        if not access_log.handlers:
            access_log.addHandler(logging.StreamHandler())  # stderr
        access_log.setLevel(logging.INFO)
        app = _AccessLog(app)
    server = _Server(
        (host, port),
        app,
        numthreads=THREADS,
        request_queue_size=LISTEN_BACKLOG,
        timeout=SOCKET_TIMEOUT,
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    server.keep_alive_conn_limit = KEEP_ALIVE_LIMIT
    server.expiration_interval = EXPIRY_CHECK
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {
        signum: signal.signal(signum, _on_signal) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        _in_daemon_thread(server.prepare)  # binds: a taken port fails here, before on_ready
        worker = threading.Thread(target=server.serve, name="emulator-server", daemon=True)
        worker.start()
        try:
            on_ready(_url(host, server.bind_addr[1]))
            while not stop.wait(0.2):
                pass
        finally:
            _in_daemon_thread(server.stop, timeout=SHUTDOWN_GRACE + 1)
            worker.join(timeout=1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _in_daemon_thread(call: Callable[[], object], timeout: float | None = None) -> None:
    """``call()`` in a daemon thread, its exception raised here; left running past ``timeout``.

    Threads inherit daemon from the thread that starts them: cheroot's workers, started by
    ``prepare()`` here, cannot hold the process at exit, and neither can ``stop()``, which waits
    for a request still running past the grace (a long latency fault, a stalled media reader).
    """
    done: Future[object] = Future()

    def run() -> None:
        try:
            done.set_result(call())
        except BaseException as exc:
            done.set_exception(exc)

    threading.Thread(target=run, name="emulator-server-control", daemon=True).start()
    try:
        done.result(timeout)
    except TimeoutError:
        log.warning("requests still running %s s after the stop: abandoned", timeout)
