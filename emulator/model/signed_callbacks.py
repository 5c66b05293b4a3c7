"""Status callbacks as Twilio puts them on the wire: a form-encoded POST, or a GET with the
parameters in the query string, signed (``X-Twilio-Signature``) with the auth token, answered
or not within 15 s. Rooms' callbacks (the simulator) and compositions' go out alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

CALLBACK_TIMEOUT = 15.0  # Twilio waits at most 15 s for an answer.
USER_AGENT = "TwilioProxy/1.1"


@dataclass(frozen=True)
class PreparedCallback:
    """One callback as it goes on the wire."""

    method: str
    url: str
    headers: dict[str, str]
    body: str | None


def prepare_callback(
    validator: RequestValidator, method: str, url: str, params: Mapping[str, str]
) -> PreparedCallback:
    """Encode ``params`` for ``url`` as a GET (``method == "GET"``) or else a POST, and sign it
    with ``validator``'s auth token."""
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if method == "GET":
        separator = "&" if "?" in url else "?"
        query_url = f"{url}{separator}{urlencode(params)}"
        headers["X-Twilio-Signature"] = validator.compute_signature(query_url, {})
        return PreparedCallback("GET", query_url, headers, None)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["X-Twilio-Signature"] = validator.compute_signature(url, dict(params))
    return PreparedCallback("POST", url, headers, urlencode(params))
