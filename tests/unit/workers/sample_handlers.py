"""A user's handler module, named in HANDLERS as ``tests.unit.workers.sample_handlers:record``."""

from __future__ import annotations

from schemas import HandlerEvent, RoomRecording

CALLS: list[tuple[HandlerEvent, RoomRecording | None]] = []
NOT_CALLABLE = 42


def record(event: HandlerEvent, recording: RoomRecording | None) -> None:
    CALLS.append((event, recording))
