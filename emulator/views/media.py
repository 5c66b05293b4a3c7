"""Media behind pre-signed URLs: the redirect a ``.../Media`` request answers, and the download
it points to, with no Twilio auth (like an S3 URL), byte ranges, streamed and never buffered.

This module serves recordings' media (``/_media/RT….mka``) and lends the redirect and the
download to the compositions' views (``/_media/compositions/CJ….mp4``).
"""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, request

from emulator.errors import TwilioApiError
from emulator.model.media import CONTENT_TYPES, media_chunks, sign_media, verify_media_signature
from emulator.views.context import base_url, current_state, json_response

media = Blueprint("media", __name__, url_prefix="/_media")

TTL_DEFAULT = 600
TTL_MAX = 3600
TTL_ERROR_CODE = 94603  # Twilio's "Ttl is out of range"

_FILENAME_RE = re.compile(r"^(RT[0-9a-fA-F]{32})\.(mka|mkv)$")


def requested_ttl() -> int:
    """The request's ``Ttl`` (seconds the media URL stays valid); a 400 when out of range."""
    raw_ttl = request.args.get("Ttl")
    try:
        ttl = TTL_DEFAULT if raw_ttl is None else int(raw_ttl)
    except ValueError:
        ttl = -1
    if not 1 <= ttl <= TTL_MAX:
        raise TwilioApiError.bad_parameter("Ttl is out of range", TTL_ERROR_CODE)
    return ttl


def media_redirect(prefix: str, filename: str, ttl: int) -> Response:
    """Twilio's 302 to the media URL ``{prefix}/{filename}``, signed for ``ttl`` seconds."""
    expires = int(time.time()) + ttl
    signature = sign_media(current_state().config.media_secret, filename, expires)
    location = f"{base_url()}{prefix}/{filename}?Expires={expires}&Signature={signature}"
    response = json_response({"redirect_to": location}, 302)
    response.headers["Location"] = location
    return response


def check_signature(filename: str) -> None:
    """A 403 unless the request's ``Expires`` and ``Signature`` are genuine for ``filename``."""
    if not verify_media_signature(
        current_state().config.media_secret,
        filename,
        request.args.get("Expires"),
        request.args.get("Signature"),
        now=time.time(),
    ):
        raise TwilioApiError(403, 20403, "Forbidden: invalid or expired signature")


def stream(sid: str, size: int, content_type: str) -> Response:
    """The media of ``sid`` at ``size`` bytes, or the single byte range the request asks for."""
    headers = {
        "Content-Type": content_type,
        "Accept-Ranges": "bytes",
        "ETag": f'"{sid}-{size}"',
    }
    start, stop, status = 0, size, 200
    byte_range = request.range
    if byte_range is not None and len(byte_range.ranges) == 1:
        bounds = byte_range.range_for_length(size)
        if bounds is None:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(status=416, headers=headers)
        start, stop = bounds
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)

    # Byte i depends only on the SID and i, so a range is the prefix [0, stop) cut at start.
    chunks = media_chunks(sid, stop, start=start)
    return Response(chunks, status=status, headers=headers, direct_passthrough=True)


def signed_file(filename: str, pattern: re.Pattern[str]) -> tuple[str, str]:
    """(SID, extension) of the media file ``filename`` names, once the request's signature is
    checked for it; a 404 unless ``pattern`` matches it (its groups: the SID, the extension)."""
    check_signature(filename)
    match = pattern.match(filename)
    if match is None:
        raise TwilioApiError.not_found(request.path)
    return match.group(1), match.group(2)


@media.get("/<filename>")
def download(filename: str) -> Response:
    sid, container = signed_file(filename, _FILENAME_RE)
    recording = current_state().store.get_recording(sid)
    if (
        recording is None
        or recording.status != "completed"
        or recording.size <= 0
        or recording.container_format != container
    ):
        raise TwilioApiError.not_found(request.path)
    return stream(sid, recording.size, CONTENT_TYPES[container])
