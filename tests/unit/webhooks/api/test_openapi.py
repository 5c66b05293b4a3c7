"""webhooks.api.openapi: the OpenAPI 3.1 document is valid, served, and says what the app does."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import jsonschema
import pytest
import schemathesis
from flask.testing import FlaskClient

from schemas import CALLBACK_SCHEMAS
from tests.support.twilio import recording_params, room_params, sid
from tests.unit.webhooks.helpers import post_callback
from webhooks.api.openapi import CALLBACK_UNION, openapi_document
from webhooks.intake.views import CALLBACK_PATH

DOC = openapi_document()
SCHEMAS = DOC["components"]["schemas"]


def validator(component: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{component}", "components": DOC["components"]}
    return jsonschema.Draft202012Validator(root)


def as_documented(params: dict[str, str]) -> dict[str, Any]:
    """Form values as the document types them (integers), for a JSON Schema validator."""
    schema = next(
        SCHEMAS[name] for name in SCHEMAS
        if SCHEMAS[name].get("title") == params["StatusCallbackEvent"]
    )  # fmt: skip
    types = {name: prop.get("type") for name, prop in schema["properties"].items()}
    return {k: int(v) if types.get(k) == "integer" else v for k, v in params.items()}


def test_served_at_openapi_json(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == json.loads(json.dumps(DOC))
    assert DOC["openapi"] == "3.1.0"


def test_valid_openapi_3_1_for_schemathesis() -> None:
    schemathesis.openapi.from_dict(DOC).validate()  # raises on any violation of the 3.1 schema


def test_valid_openapi_3_1_for_openapi_spec_validator() -> None:
    if importlib.util.find_spec("openapi_spec_validator") is None:
        pytest.skip("openapi-spec-validator is not installed (schemathesis checks 3.1 above)")
    from openapi_spec_validator import OpenAPIV31SpecValidator

    errors = [str(error) for error in OpenAPIV31SpecValidator(DOC).iter_errors()]
    assert errors == []


@pytest.mark.parametrize("event", sorted(CALLBACK_SCHEMAS))
def test_every_event_is_described_with_twilio_names(event: str) -> None:
    [schema] = [s for s in SCHEMAS.values() if s.get("title") == event]
    declared = CALLBACK_SCHEMAS[event]().fields.values()
    assert set(schema["properties"]) == {field.data_key for field in declared}
    assert set(schema["required"]) == {field.data_key for field in declared if field.required}
    assert schema["properties"]["StatusCallbackEvent"] == {"type": "string", "const": event}
    assert schema["additionalProperties"] == {"type": "string"}


@pytest.mark.parametrize(
    "params",
    [
        recording_params("recording-started"), recording_params("recording-completed"),
        recording_params("recording-failed"), room_params("room-created"),
        room_params("room-ended", RoomDuration="60"),
        room_params("participant-connected", ParticipantSid=sid("PA")),
        room_params("track-added", ParticipantSid=sid("PA"), TrackSid=sid("MT"),
                    TrackKind="video"),
        recording_params(Codec="OPUS", Type="AUDIO", Container="MKA", NewParam="later"),
    ],
    ids=lambda p: p["StatusCallbackEvent"],
)  # fmt: skip
def test_real_callbacks_match_exactly_one_documented_event(params: dict[str, str]) -> None:
    validator(CALLBACK_UNION).validate(as_documented(params))


@pytest.mark.parametrize(
    "change",
    [{"RoomSid": "RM123"}, {"StatusCallbackEvent": "room-exploded"}, {"Codec": "MP3"},
     {"Size": "-1"}],
)  # fmt: skip
def test_what_the_app_refuses_the_document_refuses_too(change: dict[str, str]) -> None:
    params = recording_params() | change
    documented = {k: (int(v) if k == "Size" else v) for k, v in params.items()}
    assert not validator(CALLBACK_UNION).is_valid(documented)


def test_the_callback_operations_and_their_answers() -> None:
    operations = DOC["paths"][CALLBACK_PATH]
    assert set(operations["post"]["responses"]) == {"204", "400", "403", "413", "415", "503"}
    assert set(operations["get"]["responses"]) == {"204", "400", "403", "413", "503"}
    for operation in operations.values():
        [signature] = [p for p in operation["parameters"] if p["name"] == "X-Twilio-Signature"]
        assert signature["in"] == "header" and signature["required"] is True
    body = operations["post"]["requestBody"]["content"]
    assert list(body) == ["application/x-www-form-urlencoded"]
    assert "Retry-After" in operations["post"]["responses"]["503"]["headers"]


@pytest.mark.parametrize(
    ("send", "status"),
    [(lambda c: post_callback(c, recording_params(), token="wrong"), 403),
     (lambda c: post_callback(c, recording_params(RecordingSid="RTnope")), 400),
     (lambda c: c.post(CALLBACK_PATH, data="{}", content_type="application/json"), 415)],
)  # fmt: skip
def test_problems_answered_match_the_problem_schema(
    client: FlaskClient, send: Any, status: int
) -> None:
    response = send(client)
    assert response.status_code == status
    validator("Problem").validate(response.get_json(force=True))


def test_probes_and_metrics_are_described() -> None:
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json"} <= set(DOC["paths"])


def test_the_read_api_is_described_when_present() -> None:
    if importlib.util.find_spec("schemas.api") is None:
        assert "/recordings" not in DOC["paths"]
        return
    listing = DOC["paths"]["/recordings"]["get"]
    assert listing["security"] == [{"bearerAuth": []}]
    assert {"room", "status", "limit", "cursor"} <= {p["name"] for p in listing["parameters"]}
    assert {"200", "400", "401", "404", "503"} <= set(listing["responses"])
    assert "/recordings/{sid}" in DOC["paths"]
    assert DOC["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
