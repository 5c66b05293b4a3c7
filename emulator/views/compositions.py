"""Compositions over HTTP: the Twilio endpoints (``/v1/Compositions``), their signed media
(``/_media/compositions/...``) and their control API (``/_emulator/compositions``).

Control API: ``GET /_emulator/compositions[/{CJ}]`` (each with the ``callbacks`` it sent),
``POST /_emulator/compositions/{CJ}/advance`` (``{"to": "processing"|"completed"|"failed",
"error_message": ...}``, all optional: one step, answered once its callbacks were sent), and
``GET``/``POST /_emulator/composition-settings`` (``{"auto_advance_ms": int | null}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, request

from emulator.errors import TwilioApiError, ValidationError
from emulator.model.composition_flow import CompositionFlow
from emulator.model.compositions import (
    CONTENT_TYPES,
    STATUSES,
    Composition,
    parse_create,
    render_composition,
)
from emulator.model.formats import parse_datetime, utcnow
from emulator.model.listing import page_meta, paginate, parse_page_request
from emulator.views.context import base_url, current_state, json_response, mine
from emulator.views.control import answer_errors_as_json
from emulator.views.media import media_redirect, requested_ttl, signed_file, stream

api = Blueprint("compositions_api", __name__, url_prefix="/v1")
media = Blueprint("compositions_media", __name__, url_prefix="/_media/compositions")
control = Blueprint("compositions_control", __name__, url_prefix="/_emulator")

FLOW_KEY = "emulator.compositions"
_FILENAME_RE = re.compile(r"^(CJ[0-9a-fA-F]{32})\.(mp4|webm)$")


def flow() -> CompositionFlow:
    found: CompositionFlow = current_app.extensions[FLOW_KEY]
    return found


def _render(composition: Composition) -> dict[str, Any]:
    return render_composition(composition, current_state().config.account_sid, base_url())


def _find(sid: str) -> Composition:
    found = current_state().compositions.get(sid)
    if found is None:
        raise TwilioApiError.not_found(request.path)
    return found


@api.post("/Compositions")
def create() -> Response:
    state = current_state()
    form = {name: request.form.getlist(name) for name in request.form}
    room = state.store.get_room(form.get("RoomSid", [""])[-1])
    if room is not None and not mine(room):  # another account's room: unknown to this one
        room = None
    composition = state.compositions.add(parse_create(form, room, now=utcnow()))
    flow().created(composition)
    return json_response(_render(composition), 201)


@api.get("/Compositions/<sid>")
def fetch(sid: str) -> Response:
    return json_response(_render(_find(sid)))


@api.delete("/Compositions/<sid>")
def delete(sid: str) -> Response:
    store = current_state().compositions
    with store.lock:
        live = store.live(sid)
        if live is None:
            raise TwilioApiError.not_found(request.path)
        live.status, live.date_deleted = "deleted", utcnow()
    return Response(status=204)


@api.get("/Compositions")
def list_compositions() -> Response:
    args = request.args
    query: list[tuple[str, str]] = []
    items = current_state().compositions.all()
    status, room_sid = args.get("Status"), args.get("RoomSid")
    if status is not None:
        if status not in STATUSES:
            raise TwilioApiError.bad_parameter(f"Invalid Status: {status}")
        items, query = [c for c in items if c.status == status], [("Status", status)]
    if room_sid is not None:
        items = [c for c in items if c.room_sid == room_sid]
        query.append(("RoomSid", room_sid))
    for name, keep in (("DateCreatedAfter", True), ("DateCreatedBefore", False)):
        raw = args.get(name)
        if raw is None:
            continue
        try:
            moment = parse_datetime(raw)
        except ValueError as exc:
            raise TwilioApiError.bad_parameter(f"Invalid {name}: {raw}") from exc
        items = [c for c in items if (c.date_created >= moment) == keep]
        query.append((name, raw))
    page_request = parse_page_request(args.getlist, max_size=100)
    # Compositions sort and page like recordings: (date_created, sid).
    page = paginate(items, page_request)  # type: ignore[arg-type]
    meta = page_meta(base_url() + request.path, _Filter(tuple(query)), page_request, page)  # type: ignore[arg-type]
    meta["key"] = "compositions"
    return json_response({"compositions": [_render(c) for c in page.items], "meta": meta})  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Filter:
    """The list query repeated in page URLs (what :func:`page_meta` reads of a filter)."""

    query: tuple[tuple[str, str], ...]


@api.get("/Compositions/<sid>/Media")
def fetch_media(sid: str) -> Response:
    composition = _find(sid)
    ttl = requested_ttl()
    if composition.status != "completed" or composition.size <= 0:
        raise TwilioApiError.not_found(request.path)
    return media_redirect("/_media/compositions", f"{composition.sid}.{composition.format}", ttl)


@media.get("/<filename>")
def download(filename: str) -> Response:
    sid, ext = signed_file(filename, _FILENAME_RE)
    composition = current_state().compositions.get(sid)
    if composition is None or composition.status != "completed" or composition.format != ext:
        raise TwilioApiError.not_found(request.path)
    return stream(sid, composition.size, CONTENT_TYPES[ext])


# Control API

answer_errors_as_json(control)


def _control_view(composition: Composition) -> dict[str, Any]:
    return _render(composition) | {"callbacks": composition.callbacks}


@control.get("/compositions")
def control_list() -> Response:
    return json_response([_control_view(c) for c in current_state().compositions.all()])


@control.get("/compositions/<sid>")
def control_get(sid: str) -> Response:
    found = current_state().compositions.get(sid)
    if found is None:
        raise KeyError(sid)
    return json_response(_control_view(found))


@control.post("/compositions/<sid>/advance")
def control_advance(sid: str) -> Response:
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict) or set(body) - {"to", "error_message"}:
        raise ValidationError('expected {"to": ..., "error_message": ...} (both optional)')
    composition = flow().advance(sid, body.get("to"), error_message=body.get("error_message"))
    return json_response(_control_view(composition))


@control.route("/composition-settings", methods=["GET", "POST"])
def control_settings() -> Response:
    store = current_state().compositions
    if request.method == "POST":
        body = request.get_json(silent=True)
        value = body.get("auto_advance_ms", store.auto_advance_ms) if isinstance(body, dict) else -1
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ValidationError("auto_advance_ms: expected a non-negative integer or null")
        store.auto_advance_ms = value
    return json_response({"auto_advance_ms": store.auto_advance_ms})
