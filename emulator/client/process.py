"""Run the emulator as a subprocess (``python -m emulator serve``) for tests and demos."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from emulator.client.control import EmulatorControl
from emulator.errors import EmulatorStartError

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


class EmulatorProcess:
    """A context manager owning one emulator subprocess on 127.0.0.1 and a free port."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        log_requests: bool = False,
        accounts: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """``accounts``: more accounts than the main one, ``{"AC…": {"auth_token": …,
        "api_key_sid": …, "api_key_secret": …}}``, each seeing only its own resources."""
        self._args = [sys.executable, "-m", "emulator", "serve", "--host", "127.0.0.1"]
        self._args += ["--port", "0", "--account-sid", account_sid]
        if api_key_sid is not None and api_key_secret is not None:
            self._args += ["--api-key-sid", api_key_sid, "--api-key-secret", api_key_secret]
        if log_requests:
            self._args.append("--log-requests")
        # The token travels in the environment, not in the (world-readable) argument list.
        self._auth_token = auth_token
        self._accounts = json.dumps(dict(accounts)) if accounts else ""
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=200)
        self._threads: list[threading.Thread] = []
        self._url: str | None = None
        self._control: EmulatorControl | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmulatorStartError("the emulator is not running")
        return self._url

    @property
    def control(self) -> EmulatorControl:
        if self._control is None:
            self._control = EmulatorControl(self.url)
        return self._control

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process is not None else None

    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    def start(self) -> EmulatorProcess:
        env = dict(os.environ, TWILIO_AUTH_TOKEN=self._auth_token, TWILIO_ACCOUNTS=self._accounts)
        self._process = subprocess.Popen(
            self._args,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._pump(self._process.stdout, self._lines.put, end=lambda: self._lines.put(None))
        self._pump(self._process.stderr, self._stderr.append)
        try:
            self._url = self._read_url()
        except BaseException:
            self.stop()
            raise
        return self

    def _pump(
        self,
        stream: IO[str],
        sink: Callable[[str], None],
        end: Callable[[], None] | None = None,
    ) -> None:
        # Drained continuously so a chatty server never blocks on a full pipe.
        def run() -> None:
            for line in stream:
                sink(line)
            if end is not None:
                end()

        thread = threading.Thread(target=run, name="emulator-pipe", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_url(self) -> str:
        deadline = time.monotonic() + self._startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmulatorStartError(
                    f"emulator did not report its URL within {self._startup_timeout:.0f}s; "
                    f"stderr:\n{self.stderr_tail()}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if line is None:
                assert self._process is not None
                self._process.wait(timeout=STOP_TIMEOUT)
                for thread in self._threads:
                    thread.join(timeout=1)
                raise EmulatorStartError(
                    f"emulator exited with {self._process.returncode} before reporting its URL;"
                    f" stderr:\n{self.stderr_tail()}"
                )
            try:
                return str(json.loads(line)["url"])
            except (ValueError, KeyError, TypeError):
                continue  # not the ready line

    def stop(self) -> int | None:
        """SIGTERM, wait up to 5 s, then SIGKILL; returns the exit code."""
        if self._control is not None:
            self._control.close()
            self._control = None
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in self._threads:
            thread.join(timeout=STOP_TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        self._url = None
        return process.returncode

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
