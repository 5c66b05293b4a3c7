"""How compositions progress and the status callbacks they send, signed as Twilio signs them.

``composition-enqueued`` goes out when a composition is created. Each step then moves it on:
``enqueued`` -> ``processing`` sends ``composition-started`` and a ``composition-progress``;
``processing`` -> ``completed`` sends ``composition-available`` (media size and duration are
then fixed); a step to ``failed`` (asked for, or a room without completed recordings) sends
``composition-failed``. Steps are taken every ``auto_advance_ms`` by a thread per composition,
or one at a time through the control API, which answers once the step's callbacks were sent.

Callbacks go to the composition's ``StatusCallback`` (form-encoded POST, or GET with the
parameters in the query string) from one sender thread, in order, each answered or not within
15 s; the answer is kept on the composition (``callbacks``).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from requests import RequestException, Session
from twilio.request_validator import RequestValidator

from emulator.errors import ConflictError, ValidationError
from emulator.model.compositions import Composition, CompositionStore, media_of
from emulator.model.formats import format_micros, utcnow
from emulator.model.signed_callbacks import CALLBACK_TIMEOUT, prepare_callback
from emulator.model.state import EmulatorState

WAIT_TIMEOUT = 60.0
NEXT = {"enqueued": "processing", "processing": "completed"}
TARGETS = ("processing", "completed", "failed")
NO_MEDIA = "The room has no completed recording to compose"


@dataclass
class _Callback:
    sid: str
    generation: int
    url: str
    method: str
    params: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)


def callback_params(composition: Composition, event: str, account_sid: str) -> dict[str, str]:
    """The parameters of one composition status callback."""
    sid = composition.sid
    params = {
        "AccountSid": account_sid,
        "RoomSid": composition.room_sid,
        "CompositionSid": sid,
        "CompositionUri": f"/v1/Compositions/{sid}",
        "StatusCallbackEvent": event,
        "Timestamp": format_micros(utcnow()),
    }
    if event == "composition-available":
        params |= {
            "MediaUri": f"/v1/Compositions/{sid}/Media",
            "Duration": str(composition.duration),
            "Size": str(composition.size),
        }
    return params


class CompositionFlow:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.store: CompositionStore = state.compositions
        self._validator = RequestValidator(state.config.auth_token)
        self._outbox: queue.Queue[_Callback] = queue.Queue()
        self._sender: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # Progress

    def created(self, composition: Composition) -> None:
        self._send(
            composition,
            [callback_params(composition, "composition-enqueued", self.state.config.account_sid)],
        )
        delay_ms = self.store.auto_advance_ms
        if delay_ms is not None:
            generation = self.store.generation
            thread = threading.Thread(
                target=self._auto,
                args=(composition.sid, generation, delay_ms / 1000),
                name="emulator-composition",
                daemon=True,
            )
            thread.start()

    def _auto(self, sid: str, generation: int, delay: float) -> None:
        while True:
            time.sleep(delay)
            if self.store.generation != generation:
                return
            try:
                composition = self.advance(sid)
            except (KeyError, ConflictError):
                return
            if composition.status not in NEXT:
                return

    def advance(
        self,
        sid: str,
        to: str | None = None,
        *,
        error_message: str | None = None,
        wait: bool = True,
    ) -> Composition:
        """Take one step (to ``to``, else the next status); KeyError when unknown,
        ConflictError when the composition is already final."""
        account = self.state.config.account_sid
        with self.store.lock:
            composition = self.store.live(sid)
            if composition is None:
                raise KeyError(sid)
            current = composition.status
            if current not in NEXT:
                raise ConflictError(f"composition {sid} is {current}: it does not progress")
            target = to or NEXT[current]
            if target not in TARGETS or (current == "processing" and target == "processing"):
                raise ValidationError(f"to: cannot go from {current} to {target!r}")
            sends: list[dict[str, str]] = []
            if current == "enqueued" and target != "failed":
                composition.status = "processing"
                sends.append(callback_params(composition, "composition-started", account))
                progress = callback_params(composition, "composition-progress", account)
                sends.append(progress | {"PercentageDone": "50", "SecondsRemaining": "1"})
            if target == "completed":
                room = self.state.store.get_room(composition.room_sid)
                recordings = [
                    r for r in self.state.store.recordings() if r.room_sid == composition.room_sid
                ]
                media = media_of(room, recordings)
                if media is None:
                    target, error_message = "failed", NO_MEDIA
                else:
                    composition.size, composition.duration = media
                    composition.status, composition.date_completed = "completed", utcnow()
                    sends.append(callback_params(composition, "composition-available", account))
            if target == "failed":
                composition.status = "failed"
                failed = callback_params(composition, "composition-failed", account)
                sends.append(
                    failed
                    | {
                        "FailedOperation": "Composition",
                        "ErrorMessage": error_message or "Composition failed",
                    }
                )
            snapshot = self.store.get(sid)
        assert snapshot is not None
        sent = self._send(snapshot, sends)
        if wait:
            for callback in sent:
                callback.done.wait(WAIT_TIMEOUT)
        found = self.store.get(sid)
        return found if found is not None else snapshot

    # Callbacks

    def _send(self, composition: Composition, sends: list[dict[str, str]]) -> list[_Callback]:
        url = composition.status_callback
        if not url:
            return []
        queued = [
            _Callback(
                composition.sid,
                self.store.generation,
                url,
                composition.status_callback_method,
                params,
            )
            for params in sends
        ]
        self._start_sender()
        for callback in queued:
            self._outbox.put(callback)
        return queued

    def _start_sender(self) -> None:
        with self._start_lock:
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._run, name="emulator-callbacks", daemon=True
                )
                self._sender.start()

    def _run(self) -> None:
        with Session() as session:
            while True:
                callback = self._outbox.get()
                try:
                    if callback.generation == self.store.generation:
                        self._deliver(session, callback)
                finally:
                    callback.done.set()

    def _deliver(self, session: Session, callback: _Callback) -> None:
        params = callback.params
        prepared = prepare_callback(self._validator, callback.method, callback.url, params)
        record: dict[str, Any] = {"event": params["StatusCallbackEvent"], "params": params}
        try:
            response = session.request(
                prepared.method,
                prepared.url,
                data=prepared.body,
                headers=prepared.headers,
                timeout=CALLBACK_TIMEOUT,
                allow_redirects=False,
            )
            response.close()
            record |= {"status": response.status_code, "error": None}
        except RequestException as exc:
            record |= {"status": None, "error": type(exc).__name__}
        with self.store.lock:
            live = self.store.live(callback.sid)
            if live is not None and callback.generation == self.store.generation:
                live.callbacks.append(record)
