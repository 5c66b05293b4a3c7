"""``flask --app webhooks recordings fetch RT… | replay RT… [--force]``.

Both act as a worker does and read the worker's settings (Twilio credentials,
``TWILIO_VIDEO_BASE_URL``, ``HANDLERS`` …) from the environment. A recording is fetched from
the account-level resource (``GET /v1/Recordings/{RT}``), through the workers' Twilio client
and schema: with ``--account AC…`` that account's, else each configured account's in turn
(``TWILIO_ACCOUNT_SID`` first, then ``TWILIO_ACCOUNTS``) until one has it.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import AppGroup

from webhooks.app_state import app_state
from webhooks.cli.support import (
    emit_json,
    failures,
    json_option,
    progress,
    publisher,
    recording_sid,
    redis_client,
    report_replayed,
    worker_settings,
)
from workers.service import operations

group = AppGroup("recordings", help="RoomRecordings, fetched from Twilio or processed again.")


account_option = click.option(
    "--account", "account_sid", metavar="AC…",
    help="The account of the recording(s) (default: each configured account until one has it).",
)  # fmt: skip


@group.command("fetch")
@click.argument("sid", metavar="RT…", callback=recording_sid)
@account_option
@json_option
def fetch_command(sid: str, account_sid: str | None, as_json: bool) -> None:
    """Fetch one RoomRecording from Twilio and print it, validated."""
    settings = worker_settings()
    with failures():
        recording, _ = operations.fetch_recording(settings, sid, account_sid)
    if as_json:
        emit_json(recording.raw)
        return
    shown: dict[str, Any] = {"room_sid": recording.room_sid} | recording.raw
    for name, value in shown.items():
        text = json.dumps(value) if isinstance(value, dict | list) else value
        click.echo(f"{name}: {'-' if text is None else text}")


@group.command("replay")
@click.argument("sids", metavar="RT…", nargs=-1, required=True, callback=recording_sid)
@click.option(
    "--force", is_flag=True,
    help="Run every handler again, even those that already took effect for the event.",
)  # fmt: skip
@account_option
@json_option
def replay_command(
    sids: tuple[str, ...], force: bool, account_sid: str | None, as_json: bool
) -> None:
    """Process recordings again as if their final callback had just arrived: fetch each one,
    queue its recording-completed (or recording-failed) event, and let the workers run the
    handlers. Without --force, handlers that already took effect for the event are skipped."""
    settings, ttl = worker_settings(), app_state().settings.dedup_ttl
    client = redis_client(settings)
    celery = publisher(settings)
    try:
        with failures(), progress("Replaying", len(sids), enabled=len(sids) > 1) as advance:
            done = operations.replay_recordings(
                settings, client, celery, sids, dedup_ttl=ttl, force=force,
                account_sid=account_sid, progress=advance,
            )  # fmt: skip
    finally:
        celery.close()
        client.close()

    def queued(item: dict[str, Any]) -> str:
        marks = f", {item['cleared']} done mark(s) cleared" if force else ""
        return f"{item['recording_sid']}: queued {item['event']} {item['id']}{marks}"

    report_replayed(
        done, as_json, replayed=queued,
        failed=lambda problem: f"{problem['recording_sid']}: not replayed: {problem['error']}",
    )  # fmt: skip
