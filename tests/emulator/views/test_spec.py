"""Conformance of the emulator's JSON with Twilio's official OpenAPI spec.

OpenAPI 3.0 is translated into JSON Schema here: ``nullable: true`` becomes a ``"null"``
member of ``type`` (and of ``enum``). One deliberate relaxation: the spec's codec enums are
upper-case (``VP8``...) while Twilio's real payloads and the spec's own examples are lower-case,
so codec enums also accept the lower-case spelling.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

ROOM = "RM" + "5" * 32
CODEC_ENUMS = ("room_recording_enum_codec", "recording_enum_codec")


def _translate(node: Any) -> Any:
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _translate(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    schemas = _translate(spec["components"]["schemas"])
    for name in CODEC_ENUMS:
        schemas[name]["enum"] = [
            *schemas[name]["enum"],
            *(c.lower() for c in schemas[name]["enum"]),
        ]
    root = {**_translate(schema), "components": {"schemas": schemas}}
    Draft202012Validator.check_schema(root)
    return Draft202012Validator(root)


def _component(spec: dict[str, Any], name: str) -> Draft202012Validator:
    return _validator(spec, {"$ref": f"#/components/schemas/{name}"})


def _list_page(spec: dict[str, Any], path: str) -> Draft202012Validator:
    response = spec["paths"][path]["get"]["responses"]["200"]
    return _validator(spec, response["content"]["application/json"]["schema"])


def _errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


@pytest.fixture
def seeded(control: Any) -> list[dict[str, Any]]:
    return [
        control.create_recording(room_sid=ROOM),
        control.create_recording(
            room_sid=ROOM,
            type="video",
            codec="h264",
            status="completed",
            size=10_000,
            duration=4,
            media_external_location="https://bucket.s3.amazonaws.com/path/RT.mkv",
        ),
        control.create_recording(room_sid=ROOM, status="failed", participant_sid=None),
    ]


def test_spec_translation_rejects_bad_documents(twilio_spec: dict[str, Any]) -> None:
    validator = _component(twilio_spec, "video.v1.room.room_recording")
    assert _errors(validator, {"sid": "XX123", "status": "bogus", "codec": "mp3"})
    assert _errors(validator, {"size": "big"})
    assert not _errors(validator, {"sid": None, "size": None, "codec": "VP8"})


def test_fetched_resources_conform(
    twilio_spec: dict[str, Any], base_url: str, api: Any, seeded: list[dict[str, Any]]
) -> None:
    room_level = _component(twilio_spec, "video.v1.room.room_recording")
    account_level = _component(twilio_spec, "video.v1.recording")
    room_fields = set(
        twilio_spec["components"]["schemas"]["video.v1.room.room_recording"]["properties"]
    )
    account_fields = set(twilio_spec["components"]["schemas"]["video.v1.recording"]["properties"])
    for created in seeded:
        sid = created["sid"]
        body = api.get(f"{base_url}/v1/Rooms/{ROOM}/Recordings/{sid}", timeout=5).json()
        assert _errors(room_level, body) == []
        assert set(body) == room_fields
        body = api.get(f"{base_url}/v1/Recordings/{sid}", timeout=5).json()
        assert _errors(account_level, body) == []
        assert set(body) == account_fields


def test_list_pages_conform(
    twilio_spec: dict[str, Any], base_url: str, api: Any, seeded: list[dict[str, Any]]
) -> None:
    for path, url in (
        ("/v1/Rooms/{RoomSid}/Recordings", f"{base_url}/v1/Rooms/{ROOM}/Recordings"),
        ("/v1/Recordings", f"{base_url}/v1/Recordings"),
    ):
        validator = _list_page(twilio_spec, path)
        pages = 0
        while url:
            page = api.get(url, params=None if pages else {"PageSize": 2}, timeout=5).json()
            assert _errors(validator, page) == []
            assert set(page["meta"]) == set(
                twilio_spec["paths"][path]["get"]["responses"]["200"]["content"][
                    "application/json"
                ]["schema"]["properties"]["meta"]["properties"]
            )
            pages += 1
            url = page["meta"]["next_page_url"]
        assert pages == 2


def test_room_conforms(twilio_spec: dict[str, Any], base_url: str, api: Any, control: Any) -> None:
    control.create_room(sid=ROOM)
    body = api.get(f"{base_url}/v1/Rooms/{ROOM}", timeout=5).json()
    assert _errors(_component(twilio_spec, "video.v1.room"), body) == []
    assert set(body) <= set(twilio_spec["components"]["schemas"]["video.v1.room"]["properties"])
