"""The control API under /_emulator: seed recordings and rooms, inject faults, inspect traffic.

No Twilio auth and never subject to faults. Errors answer ``{"error": "..."}`` with 400
(invalid field), 404 (unknown SID) or 409 (SID already exists).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from emulator.errors import ConflictError, ValidationError
from emulator.model.rest_json import render_room, render_room_recording
from emulator.views.context import Resource, current_state, json_response, rendered

control = Blueprint("control", __name__, url_prefix="/_emulator")


def answer_errors_as_json(blueprint: Blueprint) -> None:
    """Have ``blueprint`` answer the control API's errors: ``{"error": "..."}`` with 400
    (ValidationError), 409 (ConflictError) or 404 (KeyError)."""

    @blueprint.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> Response:
        return json_response({"error": str(exc)}, 400)

    @blueprint.errorhandler(ConflictError)
    def _conflict(exc: ConflictError) -> Response:
        return json_response({"error": str(exc)}, 409)

    @blueprint.errorhandler(KeyError)
    def _unknown(exc: KeyError) -> Response:
        return json_response({"error": f"not found: {exc.args[0] if exc.args else ''}"}, 404)


answer_errors_as_json(control)


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ValidationError("expected a JSON object body")
    return data


def _create(
    create: Callable[..., tuple[Resource, bool]],
    render: Callable[[Resource, str, str], dict[str, Any]],
) -> Response:
    """``create(fields, exist_ok=...)`` with the request's body: 201 and the new resource, or
    with ``"exist_ok": true`` 200 and the existing one, unchanged."""
    fields = dict(_body())
    exist_ok = fields.pop("exist_ok", False)
    if not isinstance(exist_ok, bool):
        raise ValidationError("exist_ok: expected a boolean")
    resource, created = create(fields, exist_ok=exist_ok)
    return rendered(render, resource, 201 if created else 200)


@control.get("/health")
def health() -> Response:
    return json_response({"ok": True})


@control.post("/recordings")
def create_recording() -> Response:
    """Create a recording; ``"exist_ok": true`` returns an existing one unchanged (200)."""
    return _create(current_state().store.create_recording, render_room_recording)


@control.get("/recordings")
def list_recordings() -> Response:
    return json_response([r.to_raw() for r in current_state().store.recordings()])


@control.get("/recordings/<sid>")
def get_recording(sid: str) -> Response:
    recording = current_state().store.get_recording(sid)
    if recording is None:
        raise KeyError(sid)
    return json_response(recording.to_raw())


@control.patch("/recordings/<sid>")
def update_recording(sid: str) -> Response:
    return rendered(render_room_recording, current_state().store.update_recording(sid, _body()))


@control.post("/rooms")
def create_room() -> Response:
    return _create(current_state().store.create_room, render_room)


@control.get("/rooms")
def list_rooms() -> Response:
    return json_response([r.to_raw() for r in current_state().store.rooms()])


@control.patch("/rooms/<sid>")
def update_room(sid: str) -> Response:
    return rendered(render_room, current_state().store.update_room(sid, _body()))


@control.post("/faults")
def add_fault() -> Response:
    return json_response(current_state().faults.add(_body()).to_dict(), 201)


@control.get("/faults")
def list_faults() -> Response:
    return json_response([rule.to_dict() for rule in current_state().faults.rules()])


@control.delete("/faults")
def clear_faults() -> Response:
    current_state().faults.clear()
    return Response(status=204)


def _settings_body() -> dict[str, Any]:
    state = current_state()
    return {
        "max_concurrency": state.settings.max_concurrency,
        "latency_ms": state.settings.latency_ms,
        "throttle_retry_after": state.settings.throttle_retry_after,
    }


@control.post("/settings")
def set_settings() -> Response:
    state = current_state()
    state.settings = state.settings.updated(_body())
    return json_response(_settings_body())


@control.get("/settings")
def get_settings() -> Response:
    return json_response(_settings_body())


@control.get("/requests")
def list_requests() -> Response:
    return json_response(current_state().log.entries())


@control.delete("/requests")
def clear_requests() -> Response:
    state = current_state()
    state.log.clear()
    state.gate.reset_peak()
    return Response(status=204)


@control.get("/stats")
def stats() -> Response:
    state = current_state()
    body = state.log.stats()
    body["active"] = state.gate.active
    body["peak_concurrency"] = state.gate.peak
    return json_response(body)


@control.post("/reset")
def reset() -> Response:
    current_state().reset()
    return Response(status=204)
