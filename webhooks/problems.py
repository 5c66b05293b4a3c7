"""Every error answered as ``application/problem+json`` (RFC 9457).

``type`` is always ``https://roomrec.dev/problems/<slug>``; ``errors`` (400s only) maps each
offending parameter to its messages. Refusals are logged at WARNING with their reason, the
unexpected at ERROR with the traceback, which never reaches the body. What the client sent
(the path, a reason quoting the URL) is truncated here, in one place, before it is logged.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from webhooks.errors import WebError
from workers.service.observability import truncate

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://roomrec.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: Mapping[str, Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """One problem document as a response."""
    body: dict[str, object] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = {name: list(messages) for name, messages in errors.items()}
    response = Response(json.dumps(body), status=status, content_type=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def register(app: Flask) -> None:
    """Make every error ``app`` answers a problem document."""
    app.register_error_handler(WebError, _web_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _web_error(exc: WebError) -> Response:
    log.log(
        exc.log_level,
        "rejected %s %r: %d %s: %r",  # %r: the reason may quote what the client sent
        truncate(request.method),
        truncate(request.path),
        exc.status,
        exc.slug,
        truncate(exc.reason),
    )
    return problem(
        exc.status, exc.slug, exc.title, exc.detail, errors=exc.errors, headers=exc.headers
    )


def _http_error(exc: HTTPException) -> Response | HTTPException:
    if exc.code is None or exc.code < 400:  # redirects and the like are not errors
        return exc
    name = exc.name  # werkzeug's reason phrase, e.g. "Method Not Allowed"
    log.warning(
        "rejected %s %r: %d %s", truncate(request.method), truncate(request.path), exc.code, name
    )
    # Keep what werkzeug adds (Allow on a 405), not its HTML content type.
    headers = {key: value for key, value in exc.get_headers() if key.lower() != "content-type"}
    return problem(exc.code, _slug(name), name, exc.description or name, headers=headers)


def _unexpected(exc: Exception) -> Response:
    log.error(
        "unexpected error on %s %r",
        truncate(request.method),
        truncate(request.path),
        exc_info=exc,
    )
    return problem(
        500, "internal-error", "Internal server error", "The request could not be processed."
    )


def _slug(name: str) -> str:
    # werkzeug's reason phrase, not client input; linear anyway (a class run, nothing after).
    return _NOT_SLUG.sub("-", name.lower()).strip("-")
