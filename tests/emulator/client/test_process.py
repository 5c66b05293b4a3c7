"""``python -m emulator serve`` and EmulatorProcess: start-up, credentials, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
import requests

from emulator.client import EmulatorProcess
from emulator.client.process import REPO_ROOT
from emulator.errors import EmulatorStartError


def test_process_lifecycle(creds: Any) -> None:
    process = EmulatorProcess(creds.account_sid, creds.auth_token)
    with process:
        url = process.url
        assert url.startswith("http://127.0.0.1:")
        response = requests.get(f"{url}/v1/Recordings", auth=(creds.account_sid, creds.auth_token))
        assert response.status_code == 200
        # No API key configured: key credentials are refused.
        refused = requests.get(
            f"{url}/v1/Recordings", auth=(creds.api_key_sid, creds.api_key_secret)
        )
        assert refused.status_code == 401
    assert process.returncode == 0
    with pytest.raises(EmulatorStartError):
        process.url  # noqa: B018
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_emulator/health", timeout=2)


def test_start_failure_reports_stderr(creds: Any) -> None:
    process = EmulatorProcess("AC-not-a-sid", creds.auth_token)
    with pytest.raises(EmulatorStartError, match="account-sid"):
        process.start()
    assert process.returncode == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_cli_reads_env_credentials_and_exits_cleanly(creds: Any, signum: int) -> None:
    env = dict(os.environ, TWILIO_ACCOUNT_SID=creds.account_sid, TWILIO_AUTH_TOKEN=creds.auth_token)
    with subprocess.Popen(
        [sys.executable, "-m", "emulator", "serve", "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            url = json.loads(child.stdout.readline())["url"]
            answer = requests.get(
                f"{url}/v1/Recordings", auth=(creds.account_sid, creds.auth_token)
            )
            assert answer.status_code == 200
            child.send_signal(signum)
            stdout, stderr = child.communicate(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert child.returncode == 0, stderr
    assert stdout == ""  # the URL line is the only output
