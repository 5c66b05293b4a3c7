"""Running the roomrec commands with Flask's CLI runner, with the worker's environment."""

from __future__ import annotations

import json
import os
from typing import Any

from click.testing import Result
from flask import Flask

from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.unit.workers.helpers import FORWARD_SECRET

TARGET = "https://hooks.example.com/in?token=s3cr3t"
_OURS = ("TWILIO_", "FORWARD_", "RECONCILE_", "CELERY_", "HANDLERS", "REDIS_URL", "TASK_")


def worker_env(redis_url: str, **extra: str | None) -> dict[str, str | None]:
    """The worker's variables for a command; every other roomrec variable of this process
    is unset, so the developer's own environment never leaks in."""
    cleared: dict[str, str | None] = {name: None for name in os.environ if name.startswith(_OURS)}
    return cleared | {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "REDIS_URL": redis_url, "HANDLERS": "log,forward", "FORWARD_URLS": TARGET,
        "FORWARD_SECRET": FORWARD_SECRET, "FORWARD_ALLOW_HTTP": "1",
    } | extra  # fmt: skip


def invoke(app: Flask, *args: str, env: dict[str, str | None] | None = None,
           input: str | None = None) -> Result:  # fmt: skip
    result = app.test_cli_runner().invoke(args=list(args), env=env, input=input)
    assert "Traceback" not in result.output, result.output
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def json_out(result: Result) -> Any:
    """The one JSON document a ``--json`` command printed on stdout."""
    return json.loads(result.stdout)
