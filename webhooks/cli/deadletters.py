"""``flask --app webhooks dead-letters list | show ID | replay ID|--all | purge ID|--all``.

An ID may be shortened to any prefix naming a single entry. ``list``, ``show`` and ``purge``
need only ``REDIS_URL``; ``replay`` acts as a worker does and reads the worker's settings
(``HANDLERS``, ``FORWARD_URLS``, ``CELERY_BROKER_URL`` …) to find each entry's target.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import AppGroup

from webhooks.app_state import roomrec
from webhooks.cli.support import (
    CommandFailed,
    emit_json,
    failures,
    progress,
    publisher,
    redis_client,
    worker_settings,
)
from workers.state.deadletters import DeadLetterStore

group = AppGroup("dead-letters", help="Events a handler or the fetch gave up on.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _store() -> DeadLetterStore:
    return DeadLetterStore(redis_client(roomrec().settings.redis_url))


def _one(store: DeadLetterStore, text: str) -> dict[str, Any]:
    found = store.find(text)
    if not found:
        raise CommandFailed(f"no dead letter {text!r}")
    if len(found) > 1:
        raise CommandFailed(f"{text!r} names {len(found)} dead letters: " + ", ".join(found))
    entry = store.get(found[0])
    if entry is None:  # removed in between
        raise CommandFailed(f"no dead letter {text!r}")
    return entry


def _summary(entry: dict[str, Any]) -> str:
    return (
        f"{entry['id']}\n    failed {entry['failed_at']} after {entry['attempts']} attempt(s) "
        f"at {entry['stage']}{' -> ' + entry['target'] if entry.get('target') else ''}: "
        f"{entry['error']}"
    )


@group.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """List the dead letters, oldest failure first."""
    with failures():
        entries = _store().list()
    if as_json:
        emit_json(entries)
        return
    click.echo(f"{len(entries)} dead letter(s)" + (":" if entries else "."))
    for entry in entries:
        click.echo(_summary(entry))


@group.command("show")
@click.argument("entry_id", metavar="ID")
@json_option
def show_command(entry_id: str, as_json: bool) -> None:
    """Show one dead letter, with the event it holds."""
    with failures():
        entry = _one(_store(), entry_id)
    if as_json:
        emit_json(entry)
        return
    for name in ("id", "event_id", "stage", "target", "attempts", "failed_at", "error"):
        click.echo(f"{name}: {entry.get(name) if entry.get(name) is not None else '-'}")
    click.echo("message:")
    click.echo(json.dumps(entry["message"], indent=2))


@group.command("replay")
@click.argument("entry_id", metavar="[ID]", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@json_option
def replay_command(entry_id: str | None, replay_all: bool, as_json: bool) -> None:
    """Queue dead letters again: only the stage that failed runs again (one handler, one
    target, or the fetch). An entry is removed once its task is queued; replaying twice has
    one effect."""
    from workers.recovery.replay import DeadLetterReplayer, configured_targets
    from workers.recovery.synthetic import NotReplayable

    if bool(entry_id) == replay_all:
        raise click.UsageError("Give one ID or --all.")
    settings = worker_settings()
    client = redis_client(settings.redis_url)
    store = DeadLetterStore(client)
    celery = publisher(settings.broker_url)
    replayed: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    try:
        with failures():
            entries = store.list() if replay_all else [_one(store, entry_id or "")]
            named = {e["stage"].removeprefix("handler:") for e in entries}
            targets = configured_targets(settings, client, only=named)
            replayer = DeadLetterReplayer(store, celery, targets)
            with progress("Replaying", len(entries), enabled=replay_all) as advance:
                for entry in entries:
                    try:
                        replayed.append(replayer.replay(entry).to_json())
                    except NotReplayable as exc:  # reported; the other entries still run
                        failed.append({"id": entry["id"], "error": str(exc)})
                    advance(1)
    finally:
        celery.close()
        client.close()
    _report(replayed, failed, as_json)


def _report(replayed: list[dict[str, str]], failed: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        emit_json({"replayed": replayed, "failed": failed})
    else:
        if not replayed and not failed:
            click.echo("No dead letters.")
        for done in replayed:
            click.echo(f"replayed {done['id']}: queued {done['task']} ({done['task_id']})")
        for problem in failed:
            click.echo(f"not replayed {problem['id']}: {problem['error']}", err=True)
    if failed:
        click.get_current_context().exit(1)


@group.command("purge")
@click.argument("entry_id", metavar="[ID]", required=False)
@click.option("--all", "purge_all", is_flag=True, help="Delete every dead letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def purge_command(entry_id: str | None, purge_all: bool, yes: bool, as_json: bool) -> None:
    """Delete one dead letter, or all of them. Nothing is replayed."""
    if bool(entry_id) == purge_all:
        raise click.UsageError("Give one ID or --all.")
    with failures():
        store = _store()
        target = None if purge_all else _one(store, entry_id or "")["id"]
        what = "every dead letter" if target is None else f"dead letter {target}"
        if not yes:
            click.confirm(f"Delete {what}?", abort=True, err=True)
        count = store.purge() if target is None else int(store.remove(target))
    if as_json:
        emit_json({"purged": count})
    else:
        click.echo(f"purged {count} dead letter(s)")
