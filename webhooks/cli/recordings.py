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

from schemas import RoomRecording
from schemas.settings import WorkerSettings
from webhooks.app_state import roomrec
from webhooks.cli.support import (
    emit_json,
    failures,
    progress,
    publisher,
    recording_sid,
    redis_client,
    worker_settings,
)

group = AppGroup("recordings", help="RoomRecordings, fetched from Twilio or processed again.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def fetch(
    settings: WorkerSettings, sid: str, account_sid: str | None = None
) -> tuple[RoomRecording, str]:
    """The recording and the account it was found in: ``account_sid``'s, else the first
    configured account that has it (Twilio answers 404 for another account's recording)."""
    from workers.errors import NotFoundYet
    from workers.twilio.client import TwilioClients, load_recording

    clients = TwilioClients(settings)
    candidates = [clients.for_account(account_sid)] if account_sid else clients.every_account()
    what = f"fetch of recording {sid}"
    missing: NotFoundYet | None = None
    for twilio in candidates:
        try:
            response = twilio.request("GET", f"/v1/Recordings/{sid}", what)
        except NotFoundYet as exc:  # not this account's: try the next
            missing = missing or exc
            continue
        return load_recording(response.text, what), twilio.account_sid
    assert missing is not None
    raise missing


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
        recording, _ = fetch(settings, sid, account_sid)
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
    from workers.errors import PermanentError, TransientError
    from workers.recovery.replay import configured_targets, replay_recording
    from workers.recovery.synthetic import synthetic_message

    settings, ttl = worker_settings(), roomrec().settings.dedup_ttl
    client = redis_client(settings.redis_url)
    celery = publisher(settings.broker_url)
    replayed: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    try:
        with failures():
            targets = configured_targets(settings, client)
            with progress("Replaying", len(sids), enabled=len(sids) > 1) as advance:
                for sid in sids:
                    try:
                        recording, found_in = fetch(settings, sid, account_sid)
                        message = synthetic_message(
                            recording, source="replay", account_sid=found_in
                        )
                    except (PermanentError, TransientError) as exc:  # this one; go on
                        failed.append({"recording_sid": sid, "error": str(exc)})
                    else:
                        cleared = replay_recording(
                            message, celery, client, targets, force=force, dedup_ttl=ttl
                        )
                        replayed.append({"recording_sid": sid, "event": message.event.event,
                                         "id": message.id, "cleared": cleared})  # fmt: skip
                    advance(1)
    finally:
        celery.close()
        client.close()
    if as_json:
        emit_json({"replayed": replayed, "failed": failed})
    else:
        for done in replayed:
            marks = f", {done['cleared']} done mark(s) cleared" if force else ""
            click.echo(f"{done['recording_sid']}: queued {done['event']} {done['id']}{marks}")
        for problem in failed:
            click.echo(f"{problem['recording_sid']}: not replayed: {problem['error']}", err=True)
    if failed:
        click.get_current_context().exit(1)
