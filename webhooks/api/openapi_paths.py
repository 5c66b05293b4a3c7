"""The paths of the OpenAPI description (:mod:`webhooks.api.openapi`): the callback endpoint, the
probes and ``/metrics``, and the read API. Schemas given as marshmallow classes are turned into
components by apispec's marshmallow plugin."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from schemas import CALLBACK_SCHEMAS
from webhooks.intake.views import CALLBACK_PATH, DUPLICATE_HEADER, SPOOLED_HEADER
from webhooks.metrics import METRICS_PATH

OPENAPI_PATH = "/openapi.json"
CALLBACK_UNION = "RoomStatusCallback"
_FORM = "application/x-www-form-urlencoded"
_PROBLEM = "application/problem+json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A response answered with a problem document (``headers``: name -> header object)."""
    response: dict[str, Any] = {
        "description": description,
        "content": {_PROBLEM: {"schema": _ref("Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


# The Retry-After header of a 503: seconds to wait.
RETRY: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def callbacks(spec: APISpec, plugin: MarshmallowPlugin) -> None:
    """The callback endpoint: one component per event (its schema, with its
    ``StatusCallbackEvent`` as a constant), their union, and the GET and POST operations."""
    assert plugin.converter is not None
    mapping: dict[str, str] = {}
    for event, schema in CALLBACK_SCHEMAS.items():
        name = "".join(part.capitalize() for part in event.split("-")) + "Callback"
        body = copy.deepcopy(plugin.converter.schema2jsonschema(schema))
        body["properties"]["StatusCallbackEvent"] = {"type": "string", "const": event}
        body["additionalProperties"] = {"type": "string"}  # Twilio may add parameters
        body["title"] = event
        spec.components.schema(name, component=body)
        mapping[event] = f"#/components/schemas/{name}"
    spec.components.schema(
        CALLBACK_UNION,
        component={
            "description": "One room status callback's parameters, by StatusCallbackEvent.",
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "StatusCallbackEvent", "mapping": mapping},
        },
    )
    headers = [
        {"name": "X-Twilio-Signature", "in": "header", "required": True,
         "description": "Twilio's signature of the URL (and, for a POST, the parameters), "
                        "made with the account's auth token.",
         "schema": {"type": "string"}},
        {"name": "I-Twilio-Idempotency-Token", "in": "header", "required": False,
         "schema": {"type": "string"}},
    ]  # fmt: skip
    flag = {"schema": {"type": "string", "const": "1"}}
    responses: dict[str, Any] = {
        "204": {
            "description": "Queued (or kept on the host's disk until the queue answers).",
            "headers": {
                DUPLICATE_HEADER: flag | {"description": "The event was queued before."},
                SPOOLED_HEADER: flag | {"description": "Kept on disk; queued later."},
            },
        },
        "400": problem(
            "Invalid or repeated parameters, an unknown event, not UTF-8, more than "
            "100 parameters or a name over 256 characters."
        ),
        "403": problem(
            "Missing or wrong X-Twilio-Signature, or a Timestamp older than "
            "CALLBACK_MAX_AGE or ahead by over CALLBACK_MAX_SKEW."
        ),
        "413": problem("The request is over 64 KiB."),
        "503": problem(
            "The event could not be kept (queue down, spool full or unwritable); try again later.",
            RETRY,
        ),
    }
    post = {
        "operationId": "postRoomEvent", "tags": ["callbacks"],
        "summary": "One room status callback, as a form (StatusCallbackMethod=POST).",
        "parameters": headers,
        "requestBody": {"required": True, "content": {_FORM: {"schema": _ref(CALLBACK_UNION)}}},
        "responses": responses | {"415": problem(f"The body is not {_FORM}.")},
    }  # fmt: skip
    get = {
        "operationId": "getRoomEvent", "tags": ["callbacks"],
        "summary": "One room status callback, in the query string (StatusCallbackMethod=GET).",
        "parameters": [
            {"name": "params", "in": "query", "required": True, "style": "form",
             "explode": True, "schema": _ref(CALLBACK_UNION)},
            *headers,
        ],
        "responses": responses,
    }  # fmt: skip
    spec.path(path=CALLBACK_PATH, operations={"get": get, "post": post})


def probes(spec: APISpec) -> None:
    """``/healthz``, ``/readyz``, ``/metrics`` and this document's own path."""
    ok = {
        "description": "OK.",
        "content": {"application/json": {"schema": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "const": "ok"}},
        }}},
    }  # fmt: skip
    spec.path(path="/healthz", operations={"get": {
        "operationId": "healthz", "tags": ["probes"], "summary": "The process answers.",
        "responses": {"200": ok},
    }})  # fmt: skip
    spec.path(path="/readyz", operations={"get": {
        "operationId": "readyz", "tags": ["probes"], "summary": "The queue answers too.",
        "responses": {"200": ok, "503": problem("The queue does not answer.", RETRY)},
    }})  # fmt: skip
    text = {"schema": {"type": "string"}}
    spec.path(path=METRICS_PATH, operations={"get": {
        "operationId": "metrics", "tags": ["probes"],
        "summary": "Prometheus metrics of every web process, and the queue depth.",
        "responses": {"200": {"description": "Prometheus text (or OpenMetrics if asked for).",
                              "content": {"text/plain": text,
                                          "application/openmetrics-text": text}}},
    }})  # fmt: skip
    spec.path(path=OPENAPI_PATH, operations={"get": {
        "operationId": "openapi", "tags": ["probes"], "summary": "This description.",
        "responses": {"200": {"description": "OpenAPI 3.1.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }})  # fmt: skip


def _date_or_datetime(kind: type) -> Any:
    def attributes(self: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
        if not isinstance(field, kind):
            return {}
        return {
            "anyOf": [{"format": "date"}, {"format": "date-time"}],
            "description": "A date (midnight UTC) or a date-time (UTC if no offset).",
        }

    return attributes


def read_api(spec: APISpec, plugin: MarshmallowPlugin, api: ModuleType) -> None:
    """``GET /recordings`` and ``GET /recordings/{sid}`` from the schemas of ``api``
    (:mod:`schemas.api`), behind the bearer token."""
    assert plugin.converter is not None
    if hasattr(api, "UtcDateTime"):
        plugin.converter.map_to_openapi_type(api.UtcDateTime, "string", "date-time")
    if hasattr(api, "CursorField"):
        plugin.converter.map_to_openapi_type(api.CursorField, "string", None)
    if hasattr(api, "DateOrDateTime"):
        plugin.converter.map_to_openapi_type(api.DateOrDateTime, "string", None)
        plugin.converter.add_attribute_function(_date_or_datetime(api.DateOrDateTime))
    common = {
        "401": problem("No bearer token, or not API_TOKEN.",
                       {"WWW-Authenticate": {"schema": {"type": "string"}}}),
        "404": problem("Not found (every path of the API, when API_TOKEN is unset)."),
        "503": problem("The database or Redis does not answer.", RETRY),
    }  # fmt: skip
    spec.path(path="/recordings", operations={"get": {
        "operationId": "listRecordings", "tags": ["recordings"],
        "summary": "Stored recordings, newest first, a page at a time.",
        "security": [{"bearerAuth": []}],
        "parameters": [{"in": "query", "schema": api.RecordingFiltersSchema}],
        "responses": {
            "200": {"description": "A page; `next` is the following page's URL.",
                    "headers": {"Link": {"schema": {"type": "string"},
                                         "description": 'The next page: <url>; rel="next"'}},
                    "content": {"application/json": {"schema": api.RecordingPageSchema}}},
            "400": problem("An unknown, repeated or invalid filter (named under errors)."),
            **common,
        },
    }})  # fmt: skip
    spec.path(path="/recordings/{sid}", operations={"get": {
        "operationId": "getRecording", "tags": ["recordings"],
        "summary": "One recording with its room, its events and each handler's outcome.",
        "security": [{"bearerAuth": []}],
        "parameters": [{"name": "sid", "in": "path", "required": True,
                        "schema": {"type": "string", "pattern": "^RT[0-9a-fA-F]{32}$"},
                        "description": "A recording SID (RT…); anything else is a 404."}],
        "responses": {
            "200": {"description": "The recording.",
                    "content": {"application/json": {"schema": api.RecordingDetailSchema}}},
            **common,
        },
    }})  # fmt: skip
