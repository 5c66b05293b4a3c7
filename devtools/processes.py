"""Real processes for the demo and the integration tests: a Celery worker, gunicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env(config: Mapping[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWILIO_", "FORWARD_"))
    }
    env.update(config)
    env["PYTHONPATH"] = str(REPO)
    return env


def children(pid: int) -> list[int]:
    """The PIDs of ``pid``'s child processes (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


class ManagedProcess:
    """A subprocess with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args: list[str], config: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.config = dict(config)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args, cwd=REPO, env=_env(self.config), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not seen in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def signal_group(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 20) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code


def celery_worker(
    config: Mapping[str, str],
    log_path: Path,
    *,
    concurrency: int = 2,
    extra_args: Sequence[str] = (),
) -> ManagedProcess:
    """A prefork worker, ready; ``extra_args`` e.g. ``["-n", "w2@%h"]`` for a second one."""
    args = [
        str(BIN / "celery"), "-A", "workers", "worker", "--loglevel", "INFO",
        "--pool", "prefork", "--concurrency", str(concurrency),
        "--without-mingle", "--without-gossip", "--without-heartbeat", *extra_args,
    ]  # fmt: skip
    worker = ManagedProcess(args, config, log_path)
    worker.start()
    try:
        worker.wait_for_log(" ready.")
    except BaseException:
        worker.stop()
        raise
    return worker


def gunicorn_web(
    config: Mapping[str, str], log_path: Path, port: int, *, workers: int = 2
) -> ManagedProcess:
    args = [
        str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--graceful-timeout", "10", "webhooks:create_app()",
    ]  # fmt: skip
    web = ManagedProcess(args, config, log_path)
    web.start()
    try:
        _wait_until_healthy(web, f"http://127.0.0.1:{port}/healthz")
    except BaseException:
        web.stop()
        raise
    return web


def _wait_until_healthy(web: ManagedProcess, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        if web.process is None or web.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not come up:\n{web.log()[-3000:]}")
        time.sleep(0.1)
