"""Queueing again what failed (a dead letter) or what should run again (a recording).

A dead letter's ``stage`` says what to queue: ``fetch`` queues ``roomrec.process_event`` with
the queued event, ``handler:<name>`` queues ``roomrec.run_handler`` for that handler and target
only, so handlers that succeeded do not run again, ``room-recordings`` lists an ended room's
recordings again and ``compose`` creates its composition again (both idempotent). The target
is found among the configured ones by the fingerprint in the entry's label (the URL itself is
never stored whole).
``validate`` entries hold a message that never loaded: there is nothing to replay.

Replaying is idempotent. An entry is removed only once its task is published (a crash in
between leaves it for the next replay), and only if it did not fail again meanwhile; and
``run_handler`` skips a handler whose done mark exists, so a replay published twice, or a
replay of a handler that succeeded since, has no second effect.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from kombu.exceptions import KombuError

from schemas import EventMessage
from schemas.settings import WorkerSettings
from workers.delivery.broker import Broker
from workers.delivery.celery_app import (
    COMPOSE_TASK,
    FETCH_STAGE,
    PROCESS_EVENT_TASK,
    ROOM_RECORDINGS_TASK,
    RUN_HANDLER_TASK,
    queue_of,
)
from workers.errors import BrokerUnavailable
from workers.handlers import HandlerContext, load_handlers
from workers.observability.redaction import fingerprint
from workers.outbound.http import Pool
from workers.pipeline.compositions import COMPOSE_STAGE
from workers.pipeline.rooms import LIST_STAGE
from workers.recovery.stand_in import NotReplayable
from workers.state.deadletters import DeadLetterStore
from workers.state.keys import done_key

log = logging.getLogger(__name__)

HANDLER_STAGE = "handler:"
Targets = Mapping[str, Sequence[str | None]]


def configured_targets(
    settings: WorkerSettings, client: redis.Redis, only: Collection[str] | None = None
) -> dict[str, tuple[str | None, ...]]:
    """Each handler of ``HANDLERS`` (of those in ``only``, if given) with its targets, as the
    workers run them. Building a handler connects nothing; it is not called."""
    names = [name for name in settings.handlers if only is None or name in only]
    http = Pool()
    try:
        handlers = load_handlers(names, HandlerContext(settings, client, http))
        return {name: tuple(handler.targets()) for name, handler in handlers.items()}
    finally:
        http.close()


def find_target(handler: str, label: str | None, targets: Targets) -> str | None:
    """The configured target of ``handler`` whose label (``redact(url)#fingerprint``) is
    ``label``; raises :class:`NotReplayable` when the handler or target is no longer set up."""
    if handler not in targets:
        raise NotReplayable(f"handler {handler!r} is not in HANDLERS")
    candidates = targets[handler]
    if label is None:
        if None in candidates:
            return None
        raise NotReplayable(f"handler {handler!r} now needs a target; the entry names none")
    shown, _, print_ = label.rpartition("#")
    for target in candidates:
        if target is not None and print_ and fingerprint(target) == print_:
            return target
    raise NotReplayable(f"target {shown or label} of {handler!r} is no longer configured")


@dataclass(frozen=True)
class Replay:
    """One task queued again: ``args`` may hold a target URL, so only ids are shown."""

    entry_id: str
    event_id: str
    stage: str
    task: str
    task_id: str
    args: list[Any]

    def to_json(self) -> dict[str, str]:
        return {"id": self.entry_id, "event_id": self.event_id, "stage": self.stage,
                "task": self.task, "task_id": self.task_id}  # fmt: skip


def plan(entry: Mapping[str, Any], targets: Targets) -> Replay:
    """The task that replays dead letter ``entry``, with a deterministic task id."""
    stage, event_id, message = entry["stage"], entry["event_id"], entry["message"]
    if stage == FETCH_STAGE:
        task, args, task_id = PROCESS_EVENT_TASK, [message], f"{event_id}.replay"
    elif stage.startswith(HANDLER_STAGE):
        name = stage.removeprefix(HANDLER_STAGE)
        target = find_target(name, entry.get("target"), targets)
        task, args = RUN_HANDLER_TASK, [name, target, message]
        task_id = f"{event_id}.{name}.{fingerprint(target) if target else '-'}.replay"
    elif stage in (LIST_STAGE, COMPOSE_STAGE):
        room_sid = message.get("room_sid") if isinstance(message, Mapping) else None
        caller = message.get("caller") if isinstance(message, Mapping) else None
        if not isinstance(room_sid, str) or (stage == LIST_STAGE and not isinstance(caller, str)):
            raise NotReplayable(f"a {stage!r} entry without its room: nothing to replay")
        if stage == LIST_STAGE:
            task, args, task_id = ROOM_RECORDINGS_TASK, [room_sid, caller], f"{caller}.rooms.replay"
        else:
            task, args, task_id = COMPOSE_TASK, [room_sid], f"compose.{room_sid}.replay"
    else:
        raise NotReplayable(f"a {stage!r} entry cannot be replayed: its message never loaded")
    return Replay(entry["id"], event_id, stage, task, task_id, args)


def publish(broker: Broker, task: str, args: list[Any], task_id: str) -> None:
    """Queue ``task`` now, on its own queue."""
    try:
        broker.schedule(task, args, task_id=task_id, queue=queue_of(task), retries=0, delay=0)
    except (KombuError, OSError, redis.RedisError) as exc:
        raise BrokerUnavailable(f"broker unavailable: {type(exc).__name__}") from exc


class DeadLetterReplayer:
    def __init__(self, store: DeadLetterStore, broker: Broker, targets: Targets) -> None:
        self.store = store
        self.broker = broker
        self.targets = targets

    def replay(self, entry: Mapping[str, Any]) -> Replay:
        """Queue ``entry``'s task again, then remove the entry (unless it failed anew)."""
        planned = plan(entry, self.targets)
        publish(self.broker, planned.task, planned.args, planned.task_id)
        self.store.remove(planned.entry_id, failed_at=entry.get("failed_at"))
        log.info("replayed dead letter %s as %s %s", planned.entry_id, planned.task,
                 planned.task_id)  # fmt: skip
        return planned


def replay_recording(
    message: EventMessage, broker: Broker, client: redis.Redis, targets: Targets, *,
    force: bool = False,
) -> int:  # fmt: skip
    """Queue ``message`` (a recording's stand-in final event) for processing, whether or not
    it was processed before. Handlers that already took effect for it are skipped by the
    workers, unless ``force`` clears their done marks first. Returns the marks cleared."""
    cleared = 0
    if force:
        pairs = [(name, target) for name, some in targets.items() for target in some]
        keys = [done_key(message.id, name, target) for name, target in pairs]
        cleared = int(client.delete(*keys)) if keys else 0
    publish(broker, PROCESS_EVENT_TASK, [message.to_json()], f"{message.id}.replay")
    # A callback that still arrives later is then a duplicate, as is the next reconciliation.
    broker.mark_seen(message)
    log.info("replaying %s of recording %s id=%s (%d done mark(s) cleared)",
             message.event.event, message.event.recording_sid, message.id, cleared)  # fmt: skip
    return cleared
