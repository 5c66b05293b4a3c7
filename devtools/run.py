"""``make run``: web (gunicorn) and one worker for real Twilio, configured by ``.env``.

Both settings are validated before anything starts, so a missing variable fails at once,
naming it. Ctrl-C (or SIGTERM) stops both gracefully.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values

from schemas.settings import (
    ConfigurationError,
    WebSettingsSchema,
    WorkerSettingsSchema,
    load_settings,
)

BIN = Path(sys.executable).parent


def main() -> int:
    env = {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **os.environ}
    try:
        load_settings(WebSettingsSchema(), env)
        load_settings(WorkerSettingsSchema(), env)
    except ConfigurationError as exc:
        print(f"roomrec: {exc} (set it in .env; see .env.example)", file=sys.stderr)
        return 2
    port = env.get("PORT", "8000")
    commands = [
        # The server settings (gevent worker, header and body deadlines, proxy-header trust)
        # are gunicorn.conf.py's, as in the image and compose.
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"0.0.0.0:{port}",
         "--workers", env.get("WEB_CONCURRENCY", "2"), "webhooks:create_app()"],
        [str(BIN / "celery"), "-A", "workers", "worker", "--loglevel", "INFO",
         "--concurrency", env.get("WORKER_CONCURRENCY", "2")],
        # Exactly one beat per deployment: it schedules reconciliation.
        [str(BIN / "celery"), "-A", "workers", "beat", "--loglevel", "INFO",
         "--schedule", "./data/celerybeat-schedule"],
    ]  # fmt: skip
    os.makedirs("data", exist_ok=True)
    processes = [subprocess.Popen(command, env=env) for command in commands]
    print(f"roomrec: web on :{port} (POST /twilio/room-events), worker and beat started. "
          "Ctrl-C stops.")  # fmt: skip

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(process.poll() is None for process in processes):
            try:
                processes[0].wait(1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    stop()
    return max(process.wait() or 0 for process in processes)


if __name__ == "__main__":
    sys.exit(main())
