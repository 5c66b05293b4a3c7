"""``flask --app webhooks dead-letters list | show ID | replay ID|--all | purge ID|--all``.

An ID may be shortened to any prefix naming a single entry. ``list``, ``show`` and ``purge``
need only ``REDIS_URL``; ``replay`` acts as a worker does and reads the worker's settings
(``HANDLERS``, ``FORWARD_URLS``, ``CELERY_BROKER_URL`` …) to find each entry's target.
"""

from __future__ import annotations

import json
from typing import Any

import click
import redis
from flask.cli import AppGroup

from webhooks.app_state import app_state
from webhooks.cli.support import (
    emit_json,
    failures,
    json_option,
    progress,
    publisher,
    redis_client,
    report_replayed,
    worker_settings,
)
from workers.service import operations

group = AppGroup("dead-letters", help="Events a handler or the fetch gave up on.")


def _client() -> redis.Redis:
    return redis_client(app_state().settings)


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
        entries = operations.dead_letters(_client())
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
        entry = operations.dead_letter(_client(), entry_id)
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
    if bool(entry_id) == replay_all:
        raise click.UsageError("Give one ID or --all.")
    settings = worker_settings()
    client = redis_client(settings)
    celery = publisher(settings)
    try:
        with failures():
            if replay_all:
                entries = operations.dead_letters(client)
            else:
                entries = [operations.dead_letter(client, entry_id or "")]
            with progress("Replaying", len(entries), enabled=replay_all) as advance:
                done = operations.replay_dead_letters(settings, client, celery, entries, advance)
    finally:
        celery.close()
        client.close()
    _report(done, as_json)


def _report(done: operations.Replayed, as_json: bool) -> None:
    if not as_json and not done.replayed and not done.failed:
        click.echo("No dead letters.")
    report_replayed(
        done, as_json,
        replayed=lambda item: f"replayed {item['id']}: queued {item['task']} ({item['task_id']})",
        failed=lambda problem: f"not replayed {problem['id']}: {problem['error']}",
    )  # fmt: skip


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
        client = _client()
        target = None if purge_all else operations.dead_letter(client, entry_id or "")["id"]
        what = "every dead letter" if target is None else f"dead letter {target}"
        if not yes:
            click.confirm(f"Delete {what}?", abort=True, err=True)
        count = operations.purge_dead_letters(client, target)
    if as_json:
        emit_json({"purged": count})
    else:
        click.echo(f"purged {count} dead letter(s)")
