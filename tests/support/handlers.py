"""User handlers (``package.module:function``) for the integration tests."""

from __future__ import annotations

from schemas import HandlerEvent, RoomRecording


def always_fails(event: HandlerEvent, recording: RoomRecording | None) -> None:
    raise RuntimeError(f"this handler always fails ({event.id})")
