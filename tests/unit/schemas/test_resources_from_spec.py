"""Resources generated from Twilio's own OpenAPI spec (its RoomRecording and Composition
schemas) are all accepted, each kept verbatim in ``raw``. Skipped when the spec (in
``../shared``) is absent.

Only what roomrec acts on is narrowed from the spec: ``sid`` and ``status`` are present and not
null (the spec lets both be null), and ``grouping_sids`` (untyped in the spec) is the object of
SIDs Twilio documents, since roomrec takes the room and participant from it.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import RoomRecordingSchema
from schemas.composition import CompositionSchema
from tests.conftest import SHARED

SPEC_PATH = SHARED / "twilio" / "twilio_video_v1.json"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip
HOST = st.text(string.ascii_lowercase + string.digits + "-_.", min_size=1, max_size=30).filter(
    lambda host: host.strip(".") and ".." not in host
)
PATH = st.lists(st.text(string.ascii_letters + string.digits + " _-.~%+!$&'()*,;=:@é",
                        max_size=12), max_size=4)  # fmt: skip
URI = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{'/'.join(path)}",
    st.sampled_from(["https", "http", "s3"]), HOST, PATH,
)  # fmt: skip
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5.5))])


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"Twilio OpenAPI spec not found at {SPEC_PATH}; not generated from it")
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return loaded


def strategy(node: dict[str, Any], schemas: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of one OpenAPI 3.0 property schema (the subset Twilio's spec uses)."""
    if "$ref" in node:
        node = schemas[node["$ref"].rsplit("/", 1)[1]]
    if "enum" in node:
        base: st.SearchStrategy[Any] = st.sampled_from(node["enum"])
    elif node.get("type") == "string" and "pattern" in node:
        base = st.from_regex(node["pattern"], fullmatch=True)
    elif node.get("type") == "string" and node.get("format") == "date-time":
        base = st.datetimes(timezones=ZONES).map(lambda moment: moment.isoformat())
    elif node.get("type") == "string" and node.get("format") == "uri":
        base = URI
    elif node.get("type") == "string":
        base = st.text(max_size=40)
    elif node.get("type") == "integer":
        base = st.integers(-(2**63), 2**63 - 1)
    elif node.get("type") == "boolean":
        base = st.booleans()
    elif node.get("type") == "array":
        base = st.lists(strategy(node.get("items", {}), schemas), max_size=3)
    elif node.get("type") == "object":
        base = st.dictionaries(st.text(max_size=10), JSON, max_size=4)
    else:  # untyped
        base = JSON
    return st.none() | base if node.get("nullable") else base


def resources(spec: dict[str, Any], name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Resources of the spec's schema ``name``, as described in this module's docstring."""
    schemas = spec["components"]["schemas"]
    properties = dict(schemas[name]["properties"])
    required = {"sid": strategy({k: v for k, v in properties.pop("sid").items()
                                 if k != "nullable"}, schemas),
                "status": strategy(properties.pop("status"), schemas)}  # fmt: skip
    if "grouping_sids" in properties:
        properties.pop("grouping_sids")
        room = strategy({"type": "string", "pattern": "^RM[0-9a-fA-F]{32}$", "nullable": True}, {})
        participant = st.none() | st.from_regex(r"^PA[0-9a-f]{32}$", fullmatch=True)
        grouping = st.none() | st.fixed_dictionaries(
            {}, optional={"room_sid": room, "participant_sid": participant}
        )
        required["grouping_sids"] = grouping
    optional = {key: strategy(node, schemas) for key, node in properties.items()}
    return st.fixed_dictionaries(required, optional=optional)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_room_recording_the_spec_allows_is_accepted(
    spec: dict[str, Any], data: st.DataObject
) -> None:
    resource = data.draw(resources(spec, "video.v1.room.room_recording"))

    recording = RoomRecordingSchema().load(resource)

    assert recording.raw == resource
    assert recording.sid == resource["sid"] and recording.status == resource["status"]
    assert recording.size == resource.get("size")
    assert recording.media_external_location == resource.get("media_external_location")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_composition_the_spec_allows_is_accepted(
    spec: dict[str, Any], data: st.DataObject
) -> None:
    resource = data.draw(resources(spec, "video.v1.composition"))

    composition = CompositionSchema().load(resource)

    assert composition.raw == resource
    assert composition.sid == resource["sid"] and composition.status == resource["status"]
    assert composition.size == resource.get("size")
