"""The Twilio endpoints of a real emulator process, over HTTP."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from emulator.client import EmulatorControl
from emulator.model.media import media_sha256

ROOM = "RM" + "1" * 32
OTHER_ROOM = "RM" + "2" * 32
PARTICIPANT = "PA" + "3" * 32
UNKNOWN_RT = "RT" + "9" * 32
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

ROOM_RECORDING_FIELDS = {
    "account_sid", "status", "date_created", "sid", "source_sid", "size", "url", "type",
    "duration", "container_format", "codec", "grouping_sids", "track_name", "offset",
    "media_external_location", "room_sid", "links",
}  # fmt: skip
RECORDING_FIELDS = (ROOM_RECORDING_FIELDS - {"room_sid"}) | {
    "status_callback",
    "status_callback_method",
}


def _completed(control: EmulatorControl, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"room_sid": ROOM, "status": "completed", "size": 1234, "duration": 2}
    values.update(fields)
    return control.create_recording(**values)


def test_auth_accepts_account_and_api_key_credentials(
    base_url: str, control: Any, creds: Any
) -> None:
    sid = _completed(control)["sid"]
    url = f"{base_url}/v1/Recordings/{sid}"
    for credentials in (
        (creds.account_sid, creds.auth_token),
        (creds.api_key_sid, creds.api_key_secret),
    ):
        assert requests.get(url, auth=credentials, timeout=5).status_code == 200
    usernames = [entry["username"] for entry in control.requests()]
    assert usernames == [creds.account_sid, creds.api_key_sid]


@pytest.mark.parametrize("case", ["none", "wrong-token", "key-with-token", "other-account"])
def test_auth_rejects_missing_or_wrong_credentials(
    base_url: str, control: Any, creds: Any, case: str
) -> None:
    credentials = {
        "none": None,
        "wrong-token": (creds.account_sid, "wrong"),
        "key-with-token": (creds.api_key_sid, creds.auth_token),
        "other-account": ("AC" + "f" * 32, creds.auth_token),
    }[case]
    sid = _completed(control)["sid"]
    response = requests.get(f"{base_url}/v1/Recordings/{sid}", auth=credentials, timeout=5)
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_fetch_room_and_account_level(base_url: str, control: Any, api: Any, creds: Any) -> None:
    created = _completed(
        control,
        participant_sid=PARTICIPANT,
        type="video",
        codec="VP8",
        track_name="camera",
        size=105956,
        duration=3,
        offset=155137307765,
        date_created="2020-08-20T01:42:05.839174Z",
    )
    sid = created["sid"]
    room_url = f"{base_url}/v1/Rooms/{ROOM}/Recordings/{sid}"
    room_level = api.get(room_url, timeout=5).json()
    assert set(room_level) == ROOM_RECORDING_FIELDS
    assert room_level == created
    assert room_level["url"] == room_url
    assert room_level["links"] == {"media": f"{room_url}/Media"}
    assert room_level["grouping_sids"] == {"room_sid": ROOM, "participant_sid": PARTICIPANT}
    assert room_level["date_created"] == "2020-08-20T01:42:05Z"
    assert (room_level["codec"], room_level["container_format"]) == ("vp8", "mkv")
    assert room_level["account_sid"] == creds.account_sid

    account_url = f"{base_url}/v1/Recordings/{sid}"
    account_level = api.get(account_url, timeout=5).json()
    assert set(account_level) == RECORDING_FIELDS
    assert account_level["url"] == account_url
    assert account_level["links"] == {"media": f"{account_url}/Media"}
    shared = ROOM_RECORDING_FIELDS - {"room_sid", "url", "links"}
    assert {k: account_level[k] for k in shared} == {k: room_level[k] for k in shared}


def test_processing_recording_defaults(control: Any, api: Any) -> None:
    created = control.create_recording(room_sid=ROOM)
    assert created["status"] == "processing"
    assert (created["size"], created["duration"]) == (0, 0)
    assert (created["type"], created["codec"], created["container_format"]) == (
        "audio",
        "opus",
        "mka",
    )
    assert re.match(r"^RT[0-9a-f]{32}$", created["sid"])
    assert DATE_RE.match(created["date_created"])
    assert created["track_name"] == created["source_sid"]


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/Recordings/{UNKNOWN_RT}",
        f"/v1/Rooms/{ROOM}/Recordings/{UNKNOWN_RT}",
        "/v1/Recordings/not-a-sid",
        f"/v1/Recordings/{UNKNOWN_RT}/Media",
        "/v1/NoSuchResource",
    ],
)
def test_unknown_resources_answer_twilio_404(base_url: str, api: Any, path: str) -> None:
    response = api.get(base_url + path, timeout=5)
    assert response.status_code == 404
    assert response.json() == {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def test_recording_of_another_room_is_not_found(base_url: str, control: Any, api: Any) -> None:
    control.create_room(sid=OTHER_ROOM)
    sid = _completed(control)["sid"]
    assert api.get(f"{base_url}/v1/Rooms/{OTHER_ROOM}/Recordings/{sid}").status_code == 404
    assert api.delete(f"{base_url}/v1/Rooms/{OTHER_ROOM}/Recordings/{sid}").status_code == 404
    listed = api.get(f"{base_url}/v1/Rooms/{OTHER_ROOM}/Recordings").json()["recordings"]
    assert listed == []


def _created_at(minute: int) -> str:
    return f"2024-05-01T10:{minute:02d}:00Z"


def _follow(api: Any, url: str) -> list[dict[str, Any]]:
    pages = []
    while url:
        response = api.get(url, timeout=5)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        url = page["meta"]["next_page_url"]
    return pages


@pytest.mark.parametrize("level", ["room", "account"])
def test_list_pages_follow_absolute_next_page_url(
    base_url: str, control: Any, api: Any, level: str
) -> None:
    # Created out of order: the list orders by date_created.
    sids = {
        m: _completed(control, date_created=_created_at(m))["sid"] for m in (5, 1, 4, 2, 3, 6, 0)
    }
    _completed(control, room_sid=OTHER_ROOM, date_created=_created_at(7))
    path = f"/v1/Rooms/{ROOM}/Recordings" if level == "room" else "/v1/Recordings"
    pages = _follow(api, f"{base_url}{path}?PageSize=3")
    expected = [sids[m] for m in sorted(sids)]
    if level == "account":
        expected.append(pages[-1]["recordings"][-1]["sid"])  # the other room's, created last
    assert [r["sid"] for p in pages for r in p["recordings"]] == expected
    assert [len(p["recordings"]) for p in pages] == ([3, 3, 1] if level == "room" else [3, 3, 2])
    for number, page in enumerate(pages):
        meta = page["meta"]
        assert (meta["page"], meta["page_size"], meta["key"]) == (number, 3, "recordings")
        assert meta["first_page_url"] == f"{base_url}{path}?PageSize=3&Page=0"
        assert meta["url"].startswith(f"{base_url}{path}?")
        if meta["next_page_url"] is not None:
            assert meta["next_page_url"].startswith(f"{base_url}{path}?")
            query = parse_qs(urlsplit(meta["next_page_url"]).query)
            assert query["Page"] == [str(number + 1)] and query["PageToken"]
    assert pages[0]["meta"]["previous_page_url"] is None
    back = api.get(pages[1]["meta"]["previous_page_url"], timeout=5).json()
    assert [r["sid"] for r in back["recordings"]] == [r["sid"] for r in pages[0]["recordings"]]
    again = api.get(pages[1]["meta"]["url"], timeout=5).json()
    assert again["recordings"] == pages[1]["recordings"]


def test_list_default_and_maximum_page_sizes(base_url: str, control: Any, api: Any) -> None:
    _completed(control)
    room_list = f"{base_url}/v1/Rooms/{ROOM}/Recordings"
    assert api.get(room_list).json()["meta"]["page_size"] == 50
    assert api.get(f"{room_list}?PageSize=1000").status_code == 200
    assert api.get(f"{room_list}?PageSize=1001").status_code == 400
    assert api.get(f"{base_url}/v1/Recordings?PageSize=100").status_code == 200
    response = api.get(f"{base_url}/v1/Recordings?PageSize=101")
    assert response.status_code == 400 and response.json()["status"] == 400


def test_list_filters(base_url: str, control: Any, api: Any) -> None:
    early = _completed(control, date_created=_created_at(1), type="audio")["sid"]
    late = _completed(
        control, date_created=_created_at(9), type="video", participant_sid=PARTICIPANT
    )
    processing = control.create_recording(room_sid=ROOM, date_created=_created_at(5))["sid"]
    other_room = _completed(control, room_sid=OTHER_ROOM, date_created=_created_at(3))["sid"]

    def sids(path: str, **params: Any) -> list[str]:
        response = api.get(f"{base_url}{path}", params=params, timeout=5)
        assert response.status_code == 200, response.text
        return [r["sid"] for r in response.json()["recordings"]]

    room = f"/v1/Rooms/{ROOM}/Recordings"
    assert sids(room) == [early, processing, late["sid"]]
    assert sids(room, Status="completed") == [early, late["sid"]]
    assert sids(room, Status="processing") == [processing]
    assert sids(room, DateCreatedAfter=_created_at(5)) == [processing, late["sid"]]
    assert sids(room, DateCreatedBefore=_created_at(5)) == [early]
    assert sids(room, DateCreatedAfter="2024-05-01T12:04:00+02:00") == [processing, late["sid"]]
    assert sids(room, SourceSid=late["source_sid"]) == [late["sid"]]
    assert sids("/v1/Recordings", GroupingSid=OTHER_ROOM) == [other_room]
    assert sids("/v1/Recordings", GroupingSid=[ROOM, PARTICIPANT]) == [late["sid"]]
    assert sids("/v1/Recordings", MediaType="video") == [late["sid"]]
    assert api.get(f"{base_url}{room}?DateCreatedAfter=yesterday").status_code == 400


def test_delete_keeps_metadata_and_removes_media(base_url: str, control: Any, api: Any) -> None:
    kept = _completed(control)["sid"]
    room_deleted = _completed(control)["sid"]
    account_deleted = _completed(control)["sid"]
    response = api.delete(f"{base_url}/v1/Rooms/{ROOM}/Recordings/{room_deleted}")
    assert (response.status_code, response.content) == (204, b"")
    assert api.delete(f"{base_url}/v1/Recordings/{account_deleted}").status_code == 204
    for sid in (room_deleted, account_deleted):
        assert api.get(f"{base_url}/v1/Recordings/{sid}").json()["status"] == "deleted"
        media = api.get(f"{base_url}/v1/Recordings/{sid}/Media", allow_redirects=False)
        assert media.status_code == 404
    listing = f"{base_url}/v1/Rooms/{ROOM}/Recordings"
    assert [r["sid"] for r in api.get(listing).json()["recordings"]] == [kept]
    deleted = api.get(listing, params={"Status": "deleted"}).json()["recordings"]
    assert {r["sid"] for r in deleted} == {room_deleted, account_deleted}


@pytest.mark.parametrize("level", ["room", "account"])
def test_media_redirects_to_a_signed_url_streaming_the_content(
    base_url: str, control: Any, api: Any, level: str
) -> None:
    size = 3 * 1024 * 1024 + 7
    created = _completed(control, size=size, type="video")
    sid = created["sid"]
    path = f"/v1/Rooms/{ROOM}/Recordings/{sid}" if level == "room" else f"/v1/Recordings/{sid}"
    response = api.get(f"{base_url}{path}/Media", params={"Ttl": 60}, allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert response.json() == {"redirect_to": location}
    assert location.startswith(f"{base_url}/_media/{sid}.mkv?")

    digest = hashlib.sha256()
    with requests.get(location, stream=True, timeout=10) as download:  # no Twilio auth
        assert download.status_code == 200
        assert download.headers["Content-Type"] == "video/x-matroska"
        assert download.headers["Content-Length"] == str(size)
        received = 0
        for piece in download.iter_content(256 * 1024):
            digest.update(piece)
            received += len(piece)
    assert received == size
    assert digest.hexdigest() == media_sha256(sid, size)


def test_media_supports_a_single_byte_range(base_url: str, control: Any, api: Any) -> None:
    sid = _completed(control, size=200_000)["sid"]
    location = api.get(f"{base_url}/v1/Recordings/{sid}/Media", allow_redirects=False).headers[
        "Location"
    ]
    whole = requests.get(location, timeout=5).content
    assert len(whole) == 200_000
    partial = requests.get(location, headers={"Range": "bytes=65530-70000"}, timeout=5)
    assert partial.status_code == 206
    assert partial.headers["Content-Type"] == "audio/x-matroska"
    assert partial.headers["Content-Range"] == "bytes 65530-70000/200000"
    assert partial.content == whole[65530:70001]
    outside = requests.get(location, headers={"Range": "bytes=300000-"}, timeout=5)
    assert outside.status_code == 416


def test_tampered_media_url_is_forbidden(base_url: str, control: Any, api: Any) -> None:
    sid = _completed(control)["sid"]
    location = api.get(f"{base_url}/v1/Recordings/{sid}/Media", allow_redirects=False).headers[
        "Location"
    ]
    signature = parse_qs(urlsplit(location).query)["Signature"][0]
    forged = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    expires = int(parse_qs(urlsplit(location).query)["Expires"][0])
    for url in (
        location.replace(signature, forged),
        location.replace(f"Expires={expires}", f"Expires={expires + 3600}"),
        location.split("?")[0],
        location.replace(".mka?", ".mkv?"),
    ):
        assert requests.get(url, timeout=5).status_code == 403, url


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "processing", "size": 0},
        {"status": "failed", "size": 0},
        {"status": "completed", "size": 0},  # fully muted track
    ],
)
def test_media_not_found_without_downloadable_content(
    base_url: str, control: Any, api: Any, fields: dict[str, Any]
) -> None:
    sid = control.create_recording(room_sid=ROOM, **fields)["sid"]
    response = api.get(f"{base_url}/v1/Recordings/{sid}/Media", allow_redirects=False)
    assert response.status_code == 404
    assert response.json()["code"] == 20404


def test_media_becomes_available_once_completed(base_url: str, control: Any, api: Any) -> None:
    sid = control.create_recording(room_sid=ROOM)["sid"]
    media = f"{base_url}/v1/Recordings/{sid}/Media"
    assert api.get(media, allow_redirects=False).status_code == 404
    control.update_recording(sid, status="completed", size=10, duration=1)
    assert api.get(media, allow_redirects=False).status_code == 302


@pytest.mark.parametrize("ttl", ["0", "3601", "-5", "soon"])
def test_media_ttl_out_of_range(base_url: str, control: Any, api: Any, ttl: str) -> None:
    sid = _completed(control)["sid"]
    response = api.get(
        f"{base_url}/v1/Recordings/{sid}/Media", params={"Ttl": ttl}, allow_redirects=False
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "more_info", "status"} and body["status"] == 400


@pytest.mark.parametrize("ttl", ["1", "3600"])
def test_media_ttl_bounds_accepted(base_url: str, control: Any, api: Any, ttl: str) -> None:
    sid = _completed(control)["sid"]
    response = api.get(
        f"{base_url}/v1/Recordings/{sid}/Media", params={"Ttl": ttl}, allow_redirects=False
    )
    assert response.status_code == 302


def test_fetch_room(base_url: str, control: Any, api: Any) -> None:
    control.create_room(sid=ROOM, unique_name="daily-standup")
    room = api.get(f"{base_url}/v1/Rooms/{ROOM}").json()
    assert (room["sid"], room["status"], room["unique_name"]) == (
        ROOM,
        "in-progress",
        "daily-standup",
    )
    assert api.get(f"{base_url}/v1/Rooms/daily-standup").json()["sid"] == ROOM
    control.update_room(ROOM, status="completed", duration=42)
    assert api.get(f"{base_url}/v1/Rooms/{ROOM}").json()["duration"] == 42
    assert api.get(f"{base_url}/v1/Rooms/daily-standup").status_code == 404


def test_twilio_python_client_against_the_emulator(base_url: str, control: Any, creds: Any) -> None:
    from twilio.rest import Client

    sid = _completed(control, size=4321)["sid"]
    client = Client(creds.account_sid, creds.auth_token)
    client.video.base_url = base_url
    recording = client.video.v1.rooms(ROOM).recordings(sid).fetch()
    assert (recording.sid, recording.size, recording.status) == (sid, 4321, "completed")
    listed = client.video.v1.recordings.list(grouping_sid=[ROOM], page_size=1)
    assert [r.sid for r in listed] == [sid]
