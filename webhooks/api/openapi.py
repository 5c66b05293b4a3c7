"""The OpenAPI 3.1 description of the web, built with apispec from the marshmallow schemas and
served at ``GET /openapi.json``.

The callback endpoint is described as Twilio uses it: a form body (POST) or a query string
(GET) holding one of the events of :data:`schemas.CALLBACK_SCHEMAS`, each with its own
``StatusCallbackEvent`` constant and the parameters its schema checks, under the names Twilio
sends. Parameters Twilio may add later are allowed (strings). Every refusal is a problem
document (:class:`schemas.problem.ProblemSchema`). The read API is described from
:mod:`schemas.api` when that module is there.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from types import ModuleType
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, json
from marshmallow import fields

from schemas.fields import CaseInsensitiveEnum, Sid
from schemas.problem import ProblemSchema
from webhooks.api.openapi_paths import CALLBACK_UNION, OPENAPI_PATH, callbacks, probes, read_api

__all__ = ["CALLBACK_UNION", "OPENAPI_PATH", "openapi_document", "register"]

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"

bp = Blueprint("openapi", __name__)


def register(app: Flask) -> None:
    """Serve the description at ``GET /openapi.json``."""
    app.register_blueprint(bp)


@bp.get(OPENAPI_PATH)
def openapi_json() -> Response:
    return Response(json.dumps(openapi_document()), mimetype="application/json")


@cache
def openapi_document() -> dict[str, Any]:
    """The whole description, as a JSON-ready dict (built once per process)."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="roomrec",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": "Twilio Video room status callbacks in; recordings out."},
    )
    assert plugin.converter is not None  # set by APISpec's init of the plugin
    plugin.converter.add_attribute_function(_twilio_field)
    spec.components.schema("Problem", schema=ProblemSchema)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    callbacks(spec, plugin)
    probes(spec)
    api_schemas = _optional("schemas.api")
    if api_schemas is not None:
        read_api(spec, plugin, api_schemas)
    return _no_null_queries(spec.to_dict())


def _twilio_field(self: Any, field: fields.Field, **_: Any) -> dict[str, Any]:
    """SIDs and case-insensitive choices, as patterns a client can check."""
    if isinstance(field, Sid):
        return {"pattern": f"^{field.prefix}[0-9a-fA-F]{{32}}$"}
    if isinstance(field, CaseInsensitiveEnum):
        alternatives = "|".join(_any_case(choice) for choice in field.choices)
        return {
            "pattern": f"^(?:{alternatives})$",
            "description": f"One of {', '.join(field.choices)}, in any case.",
        }
    return {}


def _no_null_queries(document: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never null (what marshmallow's
    ``load_default=None`` makes apispec say)."""
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and isinstance(schema.get("type"), list):
                    kinds = [kind for kind in schema["type"] if kind != "null"]
                    schema["type"] = kinds[0] if len(kinds) == 1 else kinds
                    if schema.get("default", ...) is None:
                        del schema["default"]
    return document


def _any_case(text: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in text)


def _optional(module: str) -> ModuleType | None:
    """``module``, or None when it is not there (a broken module still raises)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
