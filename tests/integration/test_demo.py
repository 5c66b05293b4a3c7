"""`make demo` as a user runs it: the whole stack from scratch, a room played, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

from devtools.processes import REPO


def test_the_demo_processes_a_room_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # it starts its own Redis
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--participants", "2", "--seed", "1"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Ctrl-C stops everything" not in (tmp_path / "demo.log").read_text():
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
            time.sleep(0.2)
        output = (tmp_path / "demo.log").read_text()
        summary = re.search(
            r"(\d+) callbacks sent \((\d+) refused\), (\d+) events forwarded", output
        )
        assert summary, output
        sent, refused, forwarded = map(int, summary.groups())
        assert sent > 10 and refused == 0 and forwarded == sent
        assert output.count("✓ recording.completed") == 4  # 2 participants x audio + video
        assert output.count("✓ room.recordings_ready") == 1
        assert "1 room ready" in output

        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        log.close()
    # Redis, the emulator, the receiver and gunicorn: every port it printed is closed again.
    ports = {int(port) for port in re.findall(r"://127\.0\.0\.1:(\d+)", output)}
    assert len(ports) == 4, output
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
