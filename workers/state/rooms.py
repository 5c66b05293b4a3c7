"""What roomrec knows of each room's completion, in Redis, and the one decision that makes a
room ready: atomically, in a Lua script, whatever the order and repetition of the updates.

Per room, three hashes (one hash tag, so a cluster keeps them on one node):

- ``roomrec:room:{RM…}``: ``account_sid``, ``room_name``, ``ended_by`` (the event that said
  ``room-ended`` first), ``listed`` (Twilio's list of the room's recordings was merged),
  ``ready_by`` and ``ready_at`` (who made the room ready, and when).
- ``roomrec:room:{RM…}:recordings``: RecordingSid -> status, ``processing`` or final
  (``completed``, ``failed``, ``deleted``). A final status never goes back to ``processing``.
- ``roomrec:room:{RM…}:resources``: RecordingSid -> the RoomRecording JSON, prefixed by its
  own status and a newline. A resource never replaces one of a later status.

A room is ready when ``room-ended`` arrived, the listing was merged, and every recording known
is final. The update that finds it so records itself as ``ready_by``: exactly one update ever
does. The state is frozen from then on; an update from the same caller (a redelivered task)
is told to emit again, every other one that the room is done.

The three hashes live the :class:`RoomTracker`'s ``ttl`` (a worker's
``WorkerSettings.marks_ttl``), refreshed by every update. Reading them (:func:`room_state`)
needs none.

An event's update is its task's last write when the decision is ``wait`` or ``done``: nothing
follows it. So an update can carry the writes that must come before it (the event's last done
marks, in one transaction with it) and the task's :class:`workers.state.holds.Hold` (its
ledger entry, released by the script itself on those two decisions): one round trip for all
three (:meth:`RoomTracker.update`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from workers.state.holds import Hold
from workers.state.keys import ROOM_RECORDINGS_KEY, ROOM_RESOURCES_KEY, ROOM_STATE_KEY

# Decisions of one update.
WAIT = "wait"  # not ready yet
LIST = "list"  # the room ended: list its recordings at Twilio, then update with them
EMIT = "emit"  # ready, and this caller emits (again, when redelivered)
DONE = "done"  # ready, and another caller emitted

RANK = {"processing": 0, "completed": 1, "failed": 1, "deleted": 2}

# KEYS: state, recordings, resources, then a hold's hashes and sorted sets (workers.state.holds).
# ARGV: caller, now, ttl, ended (0/1), listed (0/1), account_sid, room_name, the hold's member
#       ('' when none), how many of its keys are hashes,
#       then per recording: sid, status, resource status ('' when none), resource JSON.
UPDATE = """
local function update()
  local state, statuses, resources = KEYS[1], KEYS[2], KEYS[3]
  local caller = ARGV[1]
  local ready_by = redis.call('HGET', state, 'ready_by')
  if ready_by then
    if ready_by == caller then return {'emit', redis.call('HGET', state, 'ready_at')} end
    return {'done', ''}
  end
  local rank = {processing = 0, completed = 1, failed = 1, deleted = 2}
  if ARGV[6] ~= '' then redis.call('HSETNX', state, 'account_sid', ARGV[6]) end
  if ARGV[7] ~= '' then redis.call('HSETNX', state, 'room_name', ARGV[7]) end
  if ARGV[4] == '1' then redis.call('HSETNX', state, 'ended_by', caller) end
  if ARGV[5] == '1' then redis.call('HSET', state, 'listed', '1') end
  for i = 10, #ARGV, 4 do
    local sid, status, body_status, body = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local old = redis.call('HGET', statuses, sid)
    if not old or rank[status] > rank[old] then redis.call('HSET', statuses, sid, status) end
    if body ~= '' then
      local previous = redis.call('HGET', resources, sid)
      local previous_status = previous and string.match(previous, '^([^\\n]*)\\n')
      if not previous_status or rank[body_status] >= rank[previous_status] then
        redis.call('HSET', resources, sid, body_status .. '\\n' .. body)
      end
    end
  end
  local ttl = tonumber(ARGV[3])
  redis.call('EXPIRE', state, ttl)
  redis.call('EXPIRE', statuses, ttl)
  redis.call('EXPIRE', resources, ttl)
  local ended_by = redis.call('HGET', state, 'ended_by')
  if not ended_by then return {'wait', ''} end
  if redis.call('HGET', state, 'listed') ~= '1' then
    if ended_by == caller then return {'list', ''} end
    return {'wait', ''}
  end
  for _, status in ipairs(redis.call('HVALS', statuses)) do
    if status == 'processing' then return {'wait', ''} end
  end
  redis.call('HSET', state, 'ready_by', caller, 'ready_at', ARGV[2])
  return {'emit', ARGV[2]}
end
local decision = update()
-- Nothing follows a wait or a done for the caller: its hold goes with the update.
if ARGV[8] ~= '' and (decision[1] == 'wait' or decision[1] == 'done') then
  local hashes = tonumber(ARGV[9])
  for i = 4, #KEYS do
    if i - 3 <= hashes then
      redis.call('HDEL', KEYS[i], ARGV[8])
    else
      redis.call('ZREM', KEYS[i], ARGV[8])
    end
  end
end
return decision
"""


@dataclass(frozen=True, slots=True)
class Observation:
    """One recording as an event or a listing shows it: ``status`` is what is known of it
    (final wins), ``resource`` the RoomRecording JSON Twilio returned, of ``resource_status``."""

    recording_sid: str
    status: str
    resource: Mapping[str, Any] | None = None
    resource_status: str | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """What one event (``caller``, its stable id) tells of a room."""

    room_sid: str
    caller: str
    account_sid: str | None = None
    room_name: str | None = None
    ended: bool = False
    listed: bool = False
    recordings: Sequence[Observation] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: str
    ready_at: str | None = None


@dataclass(frozen=True, slots=True)
class RoomState:
    """A room as the tracker holds it (frozen once ready)."""

    room_sid: str
    account_sid: str | None
    room_name: str | None
    ended: bool
    listed: bool
    ready_by: str | None
    ready_at: str | None
    statuses: dict[str, str] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)


def final_status(*statuses: str | None) -> str:
    """The most advanced of ``statuses`` (``processing`` < ``completed``/``failed`` <
    ``deleted``); the first wins a tie."""
    known = [status for status in statuses if status in RANK]
    if not known:
        raise ValueError(f"no recording status among {statuses!r}")
    return max(known, key=lambda status: RANK[status])


class RoomTracker:
    """Merges what each event tells of a room; after every update the room's hashes expire
    ``ttl`` seconds later."""

    def __init__(self, client: redis.Redis, *, ttl: int) -> None:
        self.redis = client
        self.ttl = ttl
        self._update = client.register_script(UPDATE)

    def update(
        self, update: Update, now: str, *,
        before: Callable[[redis.client.Pipeline], None] | None = None, release: Hold | None = None,
    ) -> Outcome:  # fmt: skip
        """Merge ``update`` into the room's state; ``now`` (ISO 8601) becomes ``ready_at``
        when this update makes the room ready. ``before`` queues writes on the transaction
        the update then joins (called again if the script had to be loaded); ``release`` is
        released by the update when its decision is ``wait`` or ``done``."""
        args: list[str | int] = [
            update.caller, now, self.ttl, int(update.ended), int(update.listed),
            update.account_sid or "", update.room_name or "",
            release.member if release else "", len(release.hashes) if release else 0,
        ]  # fmt: skip
        for seen in update.recordings:
            if seen.status not in RANK or (seen.resource_status or "processing") not in RANK:
                raise ValueError(f"unknown status of recording {seen.recording_sid}")
            body = "" if seen.resource is None else json.dumps(seen.resource, sort_keys=True)
            args += [seen.recording_sid, seen.status, seen.resource_status or seen.status, body]
        sid = update.room_sid
        keys = [
            ROOM_STATE_KEY.format(sid),
            ROOM_RECORDINGS_KEY.format(sid),
            ROOM_RESOURCES_KEY.format(sid),
            *(release.keys if release else ()),
        ]
        if before is None:
            decision, ready_at = self._update(keys=keys, args=args)
        else:
            decision, ready_at = self._after(before, keys, args)
        return Outcome(_text(decision), _text(ready_at) or None)

    def _after(
        self, before: Callable[[redis.client.Pipeline], None], keys: list[str],
        args: list[str | int],
    ) -> Any:  # fmt: skip
        """The update in one transaction after what ``before`` queues. Redis runs a script by
        its digest only once it has it (not after a restart): then the script is loaded and
        the whole transaction runs again (its writes set the same values twice)."""
        try:
            return self._transaction(before, keys, args)
        except redis.exceptions.NoScriptError:
            self.redis.script_load(UPDATE)
            return self._transaction(before, keys, args)

    def _transaction(
        self, before: Callable[[redis.client.Pipeline], None], keys: list[str],
        args: list[str | int],
    ) -> Any:  # fmt: skip
        with self.redis.pipeline(transaction=True) as pipe:
            before(pipe)
            pipe.evalsha(self._update.sha, len(keys), *keys, *args)
            return pipe.execute()[-1]


def room_state(client: redis.Redis, room_sid: str) -> RoomState:
    """The room as the tracker holds it, read in one transaction (empty when unknown)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.hgetall(ROOM_STATE_KEY.format(room_sid))
        pipe.hgetall(ROOM_RECORDINGS_KEY.format(room_sid))
        pipe.hgetall(ROOM_RESOURCES_KEY.format(room_sid))
        raw_state, raw_statuses, raw_resources = pipe.execute()
    state = {_text(k): _text(v) for k, v in raw_state.items()}
    resources = {}
    for sid, value in raw_resources.items():
        _, _, body = _text(value).partition("\n")
        resources[_text(sid)] = json.loads(body)
    return RoomState(
        room_sid=room_sid, account_sid=state.get("account_sid"),
        room_name=state.get("room_name"), ended="ended_by" in state,
        listed=state.get("listed") == "1", ready_by=state.get("ready_by"),
        ready_at=state.get("ready_at"),
        statuses={_text(k): _text(v) for k, v in raw_statuses.items()},
        resources=resources,
    )  # fmt: skip


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value
