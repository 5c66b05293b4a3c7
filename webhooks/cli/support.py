"""What the ``flask --app webhooks`` commands share: settings, clean errors, output.

Exit codes: 0 done; 1 the operation failed (Twilio, Redis or the queue refused, a test callback
was not answered 2xx, a dead letter could not be replayed); 2 bad usage or configuration (the
message names the variable). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import redis
from celery import Celery

from schemas.settings import (
    ConfigurationError,
    WebSettings,
    WorkerSettings,
    WorkerSettingsSchema,
    load_settings,
)
from workers.errors import BrokerUnavailable, PermanentError, TransientError
from workers.service import operations, reads

EXIT_CONFIGURATION = 2
TIMEOUT = 10.0  # seconds for each Redis or broker call of a command
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_RECORDING_SID = re.compile(r"RT[0-9a-fA-F]{32}")


class CommandFailed(click.ClickException):
    """The operation failed; exit code 1."""


class BadConfiguration(click.ClickException):
    """The environment does not hold what the command needs; exit code 2."""

    exit_code = EXIT_CONFIGURATION


def worker_settings() -> WorkerSettings:
    """The worker's settings from the environment, for commands that act as a worker does."""
    try:
        settings: WorkerSettings = load_settings(WorkerSettingsSchema(), os.environ)
    except ConfigurationError as exc:
        raise BadConfiguration(str(exc)) from None
    return settings


def redis_client(settings: WebSettings | WorkerSettings) -> redis.Redis:
    """A client of ``REDIS_URL`` answering ``str``, failing within about :data:`TIMEOUT` s."""
    return reads.open_redis(settings.redis_url, sentinel=settings.redis_sentinel, timeout=TIMEOUT)


def publisher(settings: WorkerSettings) -> Celery:
    """A Celery app that only publishes, failing within about :data:`TIMEOUT` seconds."""
    return operations.publisher(
        settings.broker_url, timeout=TIMEOUT, sentinel=settings.redis_sentinel
    )


@contextmanager
def failures() -> Iterator[None]:
    """Turn the project's errors and Redis's into a one-line :class:`CommandFailed`."""
    try:
        yield
    except (TransientError, PermanentError, BrokerUnavailable) as exc:
        raise CommandFailed(str(exc)) from exc
    except redis.RedisError as exc:
        raise CommandFailed(f"Redis unavailable: {type(exc).__name__}: {exc}") from exc


# Every command that prints a result takes --json for a machine-readable one (emit_json).
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def emit_json(document: Any) -> None:
    """One JSON document on stdout, for scripts."""
    click.echo(json.dumps(document, indent=2))


def report_replayed(
    done: operations.Replayed, as_json: bool, *, replayed: Callable[[dict[str, Any]], str],
    failed: Callable[[dict[str, str]], str],
) -> None:  # fmt: skip
    """Print what a replay queued (a line ``replayed(item)`` each) and what it could not (a line
    ``failed(item)`` each, on stderr), or all of it as one JSON document; exit 1 if any failed."""
    if as_json:
        emit_json({"replayed": done.replayed, "failed": done.failed})
    else:
        for item in done.replayed:
            click.echo(replayed(item))
        for problem in done.failed:
            click.echo(failed(problem), err=True)
    if done.failed:
        click.get_current_context().exit(1)


def _forever() -> Iterator[None]:
    while True:
        yield None


@contextmanager
def progress(
    label: str, length: int | None = None, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """``advance(n)`` for a progress bar on stderr, shown only when ``enabled`` and stderr is
    a terminal. Without ``length`` the bar counts without an end (pages of unknown number)."""
    stream = sys.stderr
    if not (enabled and stream.isatty()):
        yield lambda _n: None
        return
    items = _forever() if length is None else None
    with click.progressbar(items, length=length, label=label, file=stream,
                           show_pos=True) as bar:  # fmt: skip
        yield bar.update


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """``2h``, ``90m``, ``3d``, ``600s`` back from now, or an ISO 8601 time (UTC if naive)."""
    now = now or datetime.now(UTC)
    duration = _DURATION.fullmatch(text.strip())
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (90m, 2h, 3d) nor an ISO 8601 time"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def recording_sid(_ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
    """A click callback checking RT SIDs (one or a tuple)."""
    values = value if isinstance(value, tuple) else (value,)
    for sid in values:
        if sid is not None and not _RECORDING_SID.fullmatch(sid):
            raise click.BadParameter(f"{sid!r} is not a recording SID (RT and 32 hex digits)")
    return value
