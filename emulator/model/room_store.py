"""Thread-safe in-memory store of recordings and rooms.

Every read returns a copy, so request threads never see a half-applied update.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from emulator.errors import ConflictError
from emulator.model.formats import utcnow
from emulator.model.rooms import (
    Recording,
    Room,
    build_recording,
    build_room,
    update_recording,
    update_room,
)

_Item = TypeVar("_Item", Recording, Room)


def _insert(table: dict[str, _Item], item: _Item, *, exist_ok: bool) -> tuple[_Item, bool]:
    """Put ``item`` in ``table`` under its SID (the caller holds the lock): ``(copy, True)``;
    where that SID is taken, the one there unchanged, ``(copy, False)``, if ``exist_ok``, else
    a ConflictError."""
    existing = table.get(item.sid)
    if existing is not None:
        if not exist_ok:
            raise ConflictError(f"sid: {item.sid} already exists")
        return replace(existing), False
    table[item.sid] = item
    return replace(item), True


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recordings: dict[str, Recording] = {}
        self._rooms: dict[str, Room] = {}

    def clear(self) -> None:
        with self._lock:
            self._recordings.clear()
            self._rooms.clear()

    # Recordings

    def create_recording(
        self, data: Mapping[str, Any], *, exist_ok: bool = False
    ) -> tuple[Recording, bool]:
        """Create from control-API fields; returns ``(recording, created)``.

        With ``exist_ok`` an existing recording of the same SID is returned unchanged, so a
        late "started" event never rolls a completed recording back.
        """
        now = utcnow()
        recording = build_recording(data, now=now)
        with self._lock:
            stored, created = _insert(self._recordings, recording, exist_ok=exist_ok)
            if created and recording.room_sid not in self._rooms:
                self._rooms[recording.room_sid] = build_room(
                    {"sid": recording.room_sid, "date_created": recording.date_created.isoformat(),
                     "account_sid": recording.account_sid},
                    now=now,
                )  # fmt: skip
            return stored, created

    def update_recording(self, sid: str, data: Mapping[str, Any]) -> Recording:
        """Apply fields to the recording ``sid``; KeyError when unknown."""
        with self._lock:
            recording = self._recordings[sid]
            candidate = replace(recording)
            update_recording(candidate, data)
            self._recordings[sid] = candidate
            return replace(candidate)

    def get_recording(self, sid: str) -> Recording | None:
        with self._lock:
            recording = self._recordings.get(sid)
            return replace(recording) if recording is not None else None

    def recordings(self) -> list[Recording]:
        """Every recording, ordered by ``date_created`` then SID."""
        with self._lock:
            items = [replace(r) for r in self._recordings.values()]
        return sorted(items, key=Recording.sort_key)

    def delete_recording(self, sid: str) -> Recording | None:
        """Mark deleted (media gone, metadata kept); None when unknown."""
        with self._lock:
            recording = self._recordings.get(sid)
            if recording is None:
                return None
            recording.status = "deleted"
            return replace(recording)

    # Rooms

    def create_room(self, data: Mapping[str, Any], *, exist_ok: bool = False) -> tuple[Room, bool]:
        room = build_room(data, now=utcnow())
        with self._lock:
            return _insert(self._rooms, room, exist_ok=exist_ok)

    def update_room(self, sid: str, data: Mapping[str, Any]) -> Room:
        """Apply fields to the room ``sid``; KeyError when unknown."""
        with self._lock:
            candidate = replace(self._rooms[sid])
            update_room(candidate, data, now=utcnow())
            self._rooms[sid] = candidate
            return replace(candidate)

    def get_room(self, sid_or_name: str) -> Room | None:
        """A room by SID, or by unique name while it is in progress (as Twilio allows)."""
        with self._lock:
            room = self._rooms.get(sid_or_name)
            if room is None:
                room = next(
                    (
                        r
                        for r in self._rooms.values()
                        if r.unique_name == sid_or_name and r.status == "in-progress"
                    ),
                    None,
                )
            return replace(room) if room is not None else None

    def rooms(self) -> list[Room]:
        with self._lock:
            items = [replace(r) for r in self._rooms.values()]
        return sorted(items, key=lambda r: (r.date_created, r.sid))
