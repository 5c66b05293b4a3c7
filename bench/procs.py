"""The processes under test, started with the same flags whatever app they serve: gunicorn
for the real web and the bare Flask view, ``celery worker`` for the real workers and the
no-op baseline. Each is a :class:`devtools.processes.ManagedProcess` (own session, SIGTERM
then SIGKILL), with its output in a log file of the run's directory."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from bench.stats import pss_mib, rss_mib, uss_mib
from devtools.processes import BIN, REPO, ManagedProcess, children

GUNICORN_WORKERS = 2


def process_env(config: Mapping[str, str]) -> dict[str, str]:
    """The environment of a process under test: ours without Twilio or forward variables
    (as :class:`ManagedProcess` does), plus ``config``, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "FORWARD_"))}
    return env | dict(config) | {"PYTHONPATH": str(REPO)}


def gunicorn_args(app: str, port: int) -> list[str]:
    """The one gunicorn command line of every web under test (only ``app`` differs). The server
    settings (worker class, connections, header and body deadlines) are gunicorn.conf.py's,
    as the image and compose run them: no flag here overrides them."""
    return [
        str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
        "--workers", str(GUNICORN_WORKERS), "--graceful-timeout", "10", app,
    ]  # fmt: skip


def server_settings() -> str:
    """The server configuration every web under test runs with, for the results' method."""
    return (
        f"gunicorn -c gunicorn.conf.py --workers {GUNICORN_WORKERS}: its BoundedGeventWorker "
        "(gevent, worker_connections, header and body deadlines), the same for every app"
    )


def celery_args(app: str, concurrency: int, pool: str = "prefork") -> list[str]:
    """The one ``celery worker`` command line of every worker under test: roomrec's as deployed
    (``python -m workers``, docker-compose.yml), any other app's through ``celery``. The
    options are the same."""
    if app == "workers":
        program = [sys.executable, "-m", "workers"]
    else:
        program = [str(BIN / "celery"), "-A", app, "worker"]
    return [
        *program, "--loglevel", "INFO",
        "--pool", pool, "--concurrency", str(concurrency),
        "--without-mingle", "--without-gossip", "--without-heartbeat",
    ]  # fmt: skip


def start_gunicorn(
    app: str, port: int, config: Mapping[str, str], log_path: Path, timeout: float = 60
) -> ManagedProcess:
    web = ManagedProcess(gunicorn_args(app, port), config, log_path)
    web.start()
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while True:
            try:
                if session.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if web.process is None or web.process.poll() is not None:
                raise RuntimeError(f"gunicorn {app} exited:\n{web.log()[-3000:]}")
            if time.monotonic() > deadline:
                web.stop()
                raise RuntimeError(f"gunicorn {app} did not come up:\n{web.log()[-3000:]}")
            time.sleep(0.1)
    _wait_for_children(web, GUNICORN_WORKERS, deadline)
    return web


def start_celery(
    app: str, concurrency: int, config: Mapping[str, str], log_path: Path, *,
    pool: str = "prefork", timeout: float = 90,
) -> tuple[ManagedProcess, float]:  # fmt: skip
    """A started worker and the ``time.time()`` at which it was seen ready."""
    worker = ManagedProcess(celery_args(app, concurrency, pool), config, log_path)
    worker.start()
    try:
        worker.wait_for_log(" ready.", timeout=timeout)
    except BaseException:
        worker.stop()
        raise
    return worker, time.time()


def _wait_for_children(process: ManagedProcess, count: int, deadline: float) -> None:
    while process.process is not None and len(children(process.process.pid)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.args[0]} did not start {count} workers")
        time.sleep(0.05)


def tree_memory(process: ManagedProcess) -> list[dict[str, Any]]:
    """RSS, PSS and USS (MiB) of a managed process (role ``main``) and of its children
    (``child``: gunicorn workers, Celery pool processes)."""
    if process.process is None:
        return []
    main = process.process.pid
    found = []
    for role, pid in [("main", main)] + [("child", child) for child in children(main)]:
        rss, pss, uss = rss_mib(pid), pss_mib(pid), uss_mib(pid)
        if rss is not None:
            found.append({"role": role, "pid": pid, "rss_mib": round(rss, 1),
                          "pss_mib": None if pss is None else round(pss, 1),
                          "uss_mib": None if uss is None else round(uss, 1)})  # fmt: skip
    return found
