"""The Twilio Video endpoints: RoomRecordings, account Recordings, their Media, and Rooms."""

from __future__ import annotations

from flask import Blueprint, Response, request

from emulator.errors import TwilioApiError
from emulator.model.listing import page_meta, paginate, parse_filter, parse_page_request
from emulator.model.media import media_filename
from emulator.model.rest_json import render_recording, render_room, render_room_recording
from emulator.model.rooms import Recording, Room
from emulator.views.context import base_url, current_state, json_response, mine, owner, rendered
from emulator.views.media import media_redirect, requested_ttl

api = Blueprint("twilio_api", __name__, url_prefix="/v1")


def _find(sid: str, room_sid: str | None = None) -> Recording:
    recording = current_state().store.get_recording(sid)
    if (
        recording is None
        or (room_sid is not None and recording.room_sid != room_sid)
        or not mine(recording)
    ):
        raise TwilioApiError.not_found(request.path)
    return recording


def _room(sid: str) -> Room:
    room = current_state().store.get_room(sid)
    if room is None or not mine(room):
        raise TwilioApiError.not_found(request.path)
    return room


@api.get("/Rooms/<room_sid>/Recordings/<sid>")
def fetch_room_recording(room_sid: str, sid: str) -> Response:
    return rendered(render_room_recording, _find(sid, room_sid))


@api.get("/Recordings/<sid>")
def fetch_recording(sid: str) -> Response:
    return rendered(render_recording, _find(sid))


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
    ttl = requested_ttl()
    # No media while processing, after deletion or failure, or for a fully muted track.
    if recording.status != "completed" or recording.size <= 0 or not recording.container_format:
        raise TwilioApiError.not_found(request.path)
    return media_redirect("/_media", media_filename(recording.sid, recording.container_format), ttl)


def _list(items: list[Recording], *, account_level: bool, max_size: int) -> Response:
    items = [r for r in items if mine(r)]
    recording_filter = parse_filter(request.args.getlist, account_level=account_level)
    page_request = parse_page_request(request.args.getlist, max_size=max_size)
    page = paginate([r for r in items if recording_filter.matches(r)], page_request)
    render = render_recording if account_level else render_room_recording
    base = base_url()
    return json_response(
        {
            "recordings": [render(r, owner(r), base) for r in page.items],
            "meta": page_meta(base + request.path, recording_filter, page_request, page),
        }
    )


@api.get("/Rooms/<room_sid>/Recordings")
def list_room_recordings(room_sid: str) -> Response:
    room = _room(room_sid)
    items = [r for r in current_state().store.recordings() if r.room_sid == room.sid]
    return _list(items, account_level=False, max_size=1000)


@api.get("/Recordings")
def list_recordings() -> Response:
    return _list(current_state().store.recordings(), account_level=True, max_size=100)


@api.get("/Rooms/<room_sid>")
def fetch_room(room_sid: str) -> Response:
    return rendered(render_room, _room(room_sid))
