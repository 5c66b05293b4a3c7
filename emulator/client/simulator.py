"""Play a Twilio room: keep the emulator's recordings in step and send signed callbacks.

The emulator is updated *before* each recording callback goes out, as on Twilio: a receiver
that fetches the recording on ``recording-completed`` finds it completed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from requests import RequestException, Session
from twilio.request_validator import RequestValidator

from emulator.client.control import EmulatorControl
from emulator.client.room_callbacks import (
    SIZE_RANGE,
    PlanOptions,
    SimulatedRecording,
    plan_room,
    recording_fields,
    recordings_from_callbacks,
)
from emulator.client.session import SessionClient
from emulator.model.formats import parse_datetime, utcnow
from emulator.model.signed_callbacks import (
    CALLBACK_TIMEOUT,
    PreparedCallback,
    prepare_callback,
)


@dataclass
class SentCallback:
    event: str
    params: dict[str, str]
    status: int | None
    error: str | None = None


@dataclass
class SimulatedRoom:
    room_sid: str
    room_name: str
    callbacks: list[SentCallback] = field(default_factory=list)
    recordings: list[SimulatedRecording] = field(default_factory=list)

    def all_acknowledged(self) -> bool:
        """Whether every callback was answered 2xx."""
        return all(c.status is not None and 200 <= c.status < 300 for c in self.callbacks)


class RoomSimulator(SessionClient):
    """Plays rooms against an emulator (via ``control``) and a callback URL."""

    def __init__(
        self,
        control: EmulatorControl,
        callback_url: str,
        account_sid: str,
        auth_token: str,
        *,
        rng: random.Random,
        method: str = "POST",
        session: Session | None = None,
        media_external_location: str | None = None,
        video_codec: str = "vp8",
        extra_params: Mapping[str, str] | None = None,
        timeout: float = CALLBACK_TIMEOUT,
    ) -> None:
        if method not in ("GET", "POST"):
            raise ValueError("method must be GET or POST")
        super().__init__(session, timeout)
        self.control = control
        self.callback_url = callback_url
        self.account_sid = account_sid
        self.method = method
        self.rng = rng
        self._validator = RequestValidator(auth_token)
        self._media_external_location = media_external_location
        self._video_codec = video_codec
        self._extra_params = dict(extra_params or {})

    def plan(
        self, participants: int = 3, record: bool = True, fail_recordings: int = 0,
        size_range: tuple[int, int] = SIZE_RANGE,
    ) -> list[dict[str, str]]:  # fmt: skip
        """The ordered parameters of every callback of a new room; nothing is sent."""
        options = PlanOptions(
            participants=participants,
            record=record,
            fail_recordings=fail_recordings,
            size_range=size_range,
            video_codec=self._video_codec,
            media_external_location=self._media_external_location,
            extra_params=self._extra_params,
        )
        return plan_room(self.rng, self.account_sid, options, now=utcnow())

    def play(
        self, participants: int = 3, record: bool = True, fail_recordings: int = 0,
        size_range: tuple[int, int] = SIZE_RANGE,
    ) -> SimulatedRoom:  # fmt: skip
        """Plan a room and send all of its callbacks in order."""
        callbacks = self.plan(participants, record, fail_recordings, size_range)
        room = SimulatedRoom(room_sid=callbacks[0]["RoomSid"], room_name=callbacks[0]["RoomName"])
        room.callbacks = [self.send(params) for params in callbacks]
        room.recordings = recordings_from_callbacks(callbacks)
        return room

    def send(self, params: Mapping[str, str], *, sync_emulator: bool = True) -> SentCallback:
        """Bring the emulator in step with this event (unless told not to), then send it."""
        if sync_emulator:
            self.sync_emulator(params)
        prepared = self.prepare(params)
        event = params.get("StatusCallbackEvent", "")
        try:
            response = self._session.request(
                prepared.method,
                prepared.url,
                data=prepared.body,
                headers=prepared.headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except RequestException as exc:
            return SentCallback(event, dict(params), None, f"{type(exc).__name__}: {exc}")
        with response:
            return SentCallback(event, dict(params), response.status_code)

    def prepare(self, params: Mapping[str, str]) -> PreparedCallback:
        """Encode and sign ``params`` as Twilio would for this simulator's method."""
        return prepare_callback(self._validator, self.method, self.callback_url, params)

    def sync_emulator(self, params: Mapping[str, str]) -> None:
        """Apply what this event means to the emulator's room and recording state.

        Idempotent and monotonic: a late ``recording-started`` never undoes a completion.
        """
        event = params.get("StatusCallbackEvent")
        if event == "room-created":
            self._ensure_room(params)
        elif event == "room-ended":
            self._ensure_room(params)
            self.control.update_room(
                params["RoomSid"],
                status="completed",
                end_time=params["Timestamp"],
                duration=int(params["RoomDuration"]),
            )
        elif event == "recording-started":
            self._ensure_recording(params, params["Timestamp"])
        elif event == "recording-completed":
            ended = parse_datetime(params["Timestamp"])
            started = ended - timedelta(seconds=int(params["Duration"]))
            self._ensure_recording(params, started.isoformat())
            self.control.update_recording(
                params["RecordingSid"],
                status="completed",
                size=int(params["Size"]),
                duration=int(params["Duration"]),
                media_external_location=params.get("MediaExternalLocation"),
            )
        elif event == "recording-failed":
            self._ensure_recording(params, params["Timestamp"])
            self.control.update_recording(params["RecordingSid"], status="failed", size=0)

    def _ensure_room(self, params: Mapping[str, str]) -> None:
        self.control.create_room(
            exist_ok=True,
            sid=params["RoomSid"],
            unique_name=params["RoomName"],
            type=params["RoomType"],
            date_created=params["Timestamp"],
        )

    def _ensure_recording(self, params: Mapping[str, str], date_created: str) -> None:
        self.control.create_recording(
            exist_ok=True, date_created=date_created, status="processing",
            **recording_fields(params),
        )  # fmt: skip
