"""roomrec's command line: ``flask --app webhooks <command>``.

- ``send-test-callback URL``: send a signed, realistic callback to a deployment.
- ``reconcile [--since WHEN]``: process recordings whose callback never arrived.
- ``recordings fetch RT…`` / ``recordings replay RT… [--force]``.
- ``dead-letters list | show ID | replay ID|--all | purge ID|--all``.

Every command takes ``--json`` to print one JSON document on stdout; long runs show a progress
bar on stderr when it is a terminal. Commands that act as a worker does read the worker's
settings from the environment and stop with exit code 2 naming a missing variable.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import click
import requests
from flask import Flask
from flask.cli import with_appcontext

from webhooks.app_state import app_state
from webhooks.cli import deadletters as cli_deadletters
from webhooks.cli import recordings as cli_recordings
from webhooks.cli.support import (
    TIMEOUT,
    CommandFailed,
    emit_json,
    failures,
    json_option,
    parse_when,
    progress,
    worker_settings,
)
from webhooks.cli.testcallback import EVENTS, callback_params, new_sid, send, sign
from workers.service import operations
from workers.service.observability import redact


def register(app: Flask) -> None:
    """Add roomrec's commands to ``app.cli``."""
    for command in (send_test_callback, reconcile_command, cli_recordings.group,
                    cli_deadletters.group):  # fmt: skip
        app.cli.add_command(command)


def _http_url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not an http(s) URL")
    return value


@click.command("send-test-callback")
@click.argument("url", callback=_http_url)
@click.option("--event", type=click.Choice(EVENTS), default="room-created", show_default=True,
              help="The StatusCallbackEvent to send.")  # fmt: skip
@click.option("--method", type=click.Choice(["POST", "GET"], case_sensitive=False),
              default="POST", show_default=True,
              help="The room's StatusCallbackMethod.")  # fmt: skip
@click.option("--auth-token", help="Sign with this token instead of TWILIO_AUTH_TOKEN.")
@click.option("--account-sid", envvar="TWILIO_ACCOUNT_SID",
              help="AccountSid to send (default: TWILIO_ACCOUNT_SID, else a made-up "
                   "one).")  # fmt: skip
@click.option("--room-sid", help="RoomSid to send (default a new one).")
@click.option("--recording-sid", help="RecordingSid of a recording event (default a new one).")
@click.option("--timeout", type=float, default=15.0, show_default=True,
              help="Seconds to wait for the answer (Twilio waits 15).")  # fmt: skip
@json_option
@with_appcontext
def send_test_callback(
    url: str, event: str, method: str, auth_token: str | None, account_sid: str | None,
    room_sid: str | None, recording_sid: str | None, timeout: float, as_json: bool,
) -> None:  # fmt: skip
    """Sign a realistic callback as Twilio does and send it to URL (the full callback URL,
    e.g. https://rec.example.com/twilio/room-events). Exits 1 unless the answer is 2xx.

    A recording event names a recording Twilio does not know unless --room-sid and
    --recording-sid name a real one: the workers then dead-letter it at the fetch."""
    accounts = app_state().settings.accounts
    account_sid = account_sid or (accounts.main.account_sid if accounts.main else None)
    account = accounts.get(account_sid)
    token = auth_token or (account.auth_token if account else None)
    if not token:
        raise CommandFailed(
            f"no auth token for account {account_sid or '(none given)'}: pass --account-sid "
            "of an account in TWILIO_ACCOUNTS, or --auth-token"
        )
    params = callback_params(
        event, account_sid=account_sid or new_sid("AC"), room_sid=room_sid,
        recording_sid=recording_sid,
    )  # fmt: skip
    signed = sign(url, params, token, method.upper())
    try:
        response = send(signed, timeout=timeout)
    except requests.RequestException as exc:
        raise CommandFailed(f"{redact(url)} did not answer: {type(exc).__name__}") from exc
    ok = 200 <= response.status_code < 300
    report = {
        "url": redact(url),
        "method": signed.method,
        "event": event,
        "status": response.status_code,
        "ok": ok,
        "duplicate": response.headers.get("X-Roomrec-Duplicate") == "1",
        "params": params,
        "body": _body(response),
    }
    if as_json:
        emit_json(report)
    else:
        click.echo(f"{signed.method} {report['url']} {event}: {response.status_code} "
                   f"{response.reason or ''}".rstrip())  # fmt: skip
        if report["body"] is not None:
            click.echo(_pretty(report["body"]))
    if not ok:
        click.get_current_context().exit(1)


def _body(response: requests.Response) -> Any:
    if not response.content:
        return None
    if response.headers.get("Content-Type", "").split(";")[0].endswith("json"):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text[:2000]


def _pretty(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body, indent=2)


@click.command("reconcile")
@click.option("--since", metavar="WHEN",
              help="From when: an ISO 8601 time or a duration back from now (90m, 2h, 3d). "
                   "Default: RECONCILE_WINDOW seconds ago.")  # fmt: skip
@click.option("--until", metavar="WHEN", help="Until when (default: now).")
@json_option
@with_appcontext
def reconcile_command(since: str | None, until: str | None, as_json: bool) -> None:
    """Process every completed or failed recording created since WHEN whose callback never
    arrived, as if it had. Recordings already processed are skipped. Every configured account
    (TWILIO_ACCOUNT_SID and TWILIO_ACCOUNTS) is listed with its own credentials."""
    settings = worker_settings()
    start = parse_when(since) if since else parse_when(f"{settings.reconcile_window}s")
    end = parse_when(until) if until else None
    if end is not None and end <= start:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    ttl = app_state().settings.dedup_ttl
    if (parse_when("0s") - start).total_seconds() > ttl:
        click.echo(f"warning: recordings processed more than DEDUP_TTL ({ttl} s) ago are no "
                   "longer remembered and will be processed again", err=True)  # fmt: skip
    with failures(), progress("Reconciling") as advance:
        summary = operations.reconcile(
            settings, start, end, dedup_ttl=ttl, timeout=TIMEOUT, progress=advance
        )
    failed = "; ".join(f"account {sid}: {error}" for sid, error in summary.failed.items())
    if as_json:
        emit_json(summary.to_json())
        if failed:
            raise CommandFailed(failed)
        return
    found = summary.to_json()
    click.echo(
        f"{summary.listed} recording(s) created since {found['since']}: {summary.enqueued} "
        f"queued, {summary.already_processed} already processed, {summary.skipped} skipped "
        f"(not final), {summary.unusable} unusable"
    )
    for sid in summary.queued:
        click.echo(f"queued {sid}")
    if failed:
        raise CommandFailed(failed)
