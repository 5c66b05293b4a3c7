"""Showing URLs without their secrets: forward targets may carry a receiver's token in the
query string or in userinfo, and must never reach a log or a dead letter whole."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """``url`` without credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def fingerprint(text: str) -> str:
    """A short stable id for ``text`` that does not reveal it."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def target_label(target: str | None) -> str | None:
    """How a handler target is named in logs and dead letters: redacted, plus its
    fingerprint so the exact target can be found again among the configured ones."""
    return None if target is None else f"{redact(target)}#{fingerprint(target)}"
