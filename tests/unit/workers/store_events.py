"""Events of one room with chosen Timestamps, for the store's and the stream's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import HandlerEvent
from tests.support.twilio import recording_params, room_params, sid, timestamp
from tests.unit.schemas.factories import participant_params
from tests.unit.workers.helpers import recording_event, room_event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return timestamp(T0 + timedelta(seconds=seconds))


@dataclass
class Room:
    """Builds the events of one room: every call returns a processed HandlerEvent."""

    sid: str = field(default_factory=lambda: sid("RM"))
    name: str = "daily-standup"
    type: str = "group"

    def event(self, name: str, seconds: float, **extra: str) -> HandlerEvent:
        base = {"RoomSid": self.sid, "RoomName": self.name, "RoomType": self.type,
                "Timestamp": at(seconds)}  # fmt: skip
        if name.startswith("participant-"):
            params = participant_params(name, **base)
        else:
            params = room_params(name, **base)
        if name == "room-ended":
            params |= {"RoomStatus": "completed", "RoomDuration": "600"}
        params.update(extra)
        return room_event(params)

    def recording(
        self, name: str, recording_sid: str, seconds: float, status: str | None = None,
        **resource: Any,
    ) -> HandlerEvent:  # fmt: skip
        """A recording event and the RoomRecording fetched for it (``status`` by default
        the one the event implies)."""
        params = recording_params(
            name, RoomSid=self.sid, RoomName=self.name, RoomType=self.type,
            RecordingSid=recording_sid, Timestamp=at(seconds),
        )  # fmt: skip
        implied = {"recording-started": "processing", "recording-failed": "failed"}
        resource.setdefault("status", status or implied.get(name, "completed"))
        resource.setdefault("date_created", at(0).replace(".000000Z", "Z"))
        return recording_event(params, **resource)
