"""The Twilio Video endpoints: RoomRecordings, account Recordings, their Media, and Rooms."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from emulator.errors import TwilioApiError
from emulator.gate import current_account, current_state
from emulator.listing import page_meta, paginate, parse_filter, parse_page_request
from emulator.media import media_filename, sign_media
from emulator.models import Recording, Room
from emulator.resources import render_recording, render_room, render_room_recording

api = Blueprint("twilio_api", __name__, url_prefix="/v1")

TTL_DEFAULT = 600
TTL_MAX = 3600
TTL_ERROR_CODE = 94603  # Twilio's "Ttl is out of range"


def base_url() -> str:
    return current_state().config.base_url or request.host_url.rstrip("/")


def owner(resource: Recording | Room) -> str:
    """The account a recording or room belongs to."""
    return resource.account_sid or current_state().config.account_sid


def mine(resource: Recording | Room) -> bool:
    """Whether the request's credentials are those of the resource's account: Twilio answers
    another account's resource 404 (code 20404), as if it did not exist."""
    return owner(resource) == current_account()


def _find(sid: str, room_sid: str | None = None) -> Recording:
    recording = current_state().store.get_recording(sid)
    if (
        recording is None
        or (room_sid is not None and recording.room_sid != room_sid)
        or not mine(recording)
    ):
        raise TwilioApiError.not_found(request.path)
    return recording


def _json(body: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


@api.get("/Rooms/<room_sid>/Recordings/<sid>")
def fetch_room_recording(room_sid: str, sid: str) -> Response:
    recording = _find(sid, room_sid)
    return _json(render_room_recording(recording, owner(recording), base_url()))


@api.get("/Recordings/<sid>")
def fetch_recording(sid: str) -> Response:
    recording = _find(sid)
    return _json(render_recording(recording, owner(recording), base_url()))


@api.delete("/Rooms/<room_sid>/Recordings/<sid>")
@api.delete("/Recordings/<sid>")
def delete_recording(sid: str, room_sid: str | None = None) -> Response:
    _find(sid, room_sid)
    current_state().store.delete_recording(sid)
    return Response(status=204)


@api.get("/Rooms/<room_sid>/Recordings/<sid>/Media")
@api.get("/Recordings/<sid>/Media")
def fetch_media(sid: str, room_sid: str | None = None) -> Response:
    recording = _find(sid, room_sid)
    raw_ttl = request.args.get("Ttl")
    try:
        ttl = TTL_DEFAULT if raw_ttl is None else int(raw_ttl)
    except ValueError:
        ttl = -1
    if not 1 <= ttl <= TTL_MAX:
        raise TwilioApiError.bad_parameter("Ttl is out of range", TTL_ERROR_CODE)
    # No media while processing, after deletion or failure, or for a fully muted track.
    if recording.status != "completed" or recording.size <= 0 or not recording.container_format:
        raise TwilioApiError.not_found(request.path)
    state = current_state()
    filename = media_filename(recording.sid, recording.container_format)
    expires = int(time.time()) + ttl
    signature = sign_media(state.config.media_secret, filename, expires)
    location = f"{base_url()}/_media/{filename}?Expires={expires}&Signature={signature}"
    response = _json({"redirect_to": location}, 302)
    response.headers["Location"] = location
    return response


def _list(items: list[Recording], *, account_level: bool, max_size: int) -> Response:
    items = [r for r in items if mine(r)]
    recording_filter = parse_filter(request.args.getlist, account_level=account_level)
    page_request = parse_page_request(request.args.getlist, max_size=max_size)
    page = paginate([r for r in items if recording_filter.matches(r)], page_request)
    render = render_recording if account_level else render_room_recording
    base = base_url()
    return _json(
        {
            "recordings": [render(r, owner(r), base) for r in page.items],
            "meta": page_meta(base + request.path, recording_filter, page_request, page),
        }
    )


@api.get("/Rooms/<room_sid>/Recordings")
def list_room_recordings(room_sid: str) -> Response:
    state = current_state()
    room = state.store.get_room(room_sid)
    if room is None or not mine(room):
        raise TwilioApiError.not_found(request.path)
    items = [r for r in state.store.recordings() if r.room_sid == room.sid]
    return _list(items, account_level=False, max_size=1000)


@api.get("/Recordings")
def list_recordings() -> Response:
    return _list(current_state().store.recordings(), account_level=True, max_size=100)


@api.get("/Rooms/<room_sid>")
def fetch_room(room_sid: str) -> Response:
    state = current_state()
    room = state.store.get_room(room_sid)
    if room is None or not mine(room):
        raise TwilioApiError.not_found(request.path)
    return _json(render_room(room, owner(room), base_url()))
