"""Pre-signed media downloads: no Twilio auth, like an S3 URL; streamed, never buffered."""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, request

from emulator.errors import TwilioApiError
from emulator.gate import current_state
from emulator.media import CONTENT_TYPES, media_chunks, verify_media_signature

media = Blueprint("media", __name__, url_prefix="/_media")

_FILENAME_RE = re.compile(r"^(RT[0-9a-fA-F]{32})\.(mka|mkv)$")


@media.get("/<filename>")
def download(filename: str) -> Response:
    state = current_state()
    if not verify_media_signature(
        state.config.media_secret,
        filename,
        request.args.get("Expires"),
        request.args.get("Signature"),
        now=time.time(),
    ):
        raise TwilioApiError(403, 20403, "Forbidden: invalid or expired signature")
    match = _FILENAME_RE.match(filename)
    recording = state.store.get_recording(match.group(1)) if match else None
    if (
        match is None
        or recording is None
        or recording.status != "completed"
        or recording.size <= 0
        or recording.container_format != match.group(2)
    ):
        raise TwilioApiError.not_found(request.path)

    size = recording.size
    headers = {
        "Content-Type": CONTENT_TYPES[match.group(2)],
        "Accept-Ranges": "bytes",
        "ETag": f'"{recording.sid}-{size}"',
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
    chunks = media_chunks(recording.sid, stop, start=start)
    return Response(chunks, status=status, headers=headers, direct_passthrough=True)
