"""The error document every refusal of the web is answered with (RFC 9457,
``application/problem+json``), for the API description."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

PROBLEM_TYPE_PATTERN = r"^https://roomrec\.dev/problems/[a-z0-9-]+$"


class ProblemSchema(Schema):
    """``type`` names the problem (its last segment is the slug, e.g. ``invalid-signature``);
    ``errors``, on a 400, maps each offending parameter to its messages."""

    class Meta:
        title = "Problem"
        description = (
            "An RFC 9457 problem document. `type` ends with the problem's slug; `errors` (400 "
            "only) maps each offending parameter to its messages."
        )

    type = fields.String(required=True, validate=validate.Regexp(PROBLEM_TYPE_PATTERN))
    title = fields.String(required=True)
    status = fields.Integer(required=True, validate=validate.Range(min=400, max=599))
    detail = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), load_default=None
    )
