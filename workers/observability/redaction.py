"""Showing URLs without their secrets: forward targets may carry a receiver's token in the
query string, in userinfo or in the path (Slack- and Discord-style webhook URLs), and must
never reach a log or a dead letter whole."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

MASK = "[REDACTED]"
# A path segment this long, with letters and digits, is taken for a token; shorter ones
# (``hooks``, ``v1``, ``T0123ABCD``) name the target and are kept.
TOKEN_SEGMENT_MIN = 16
# Query parameters named with one of these hold a secret in any URL setting.
_SECRET_QUERY_WORDS = ("token", "secret", "key", "pass", "sig", "auth", "credential", "code")
# What requests leaves unquoted when it re-quotes a URL (requests.utils.requote_uri).
_REQUESTS_SAFE = "!#$%&'()*+,/:;=?@[]~"


def _token_like(segment: str) -> bool:
    return (
        len(segment) >= TOKEN_SEGMENT_MIN
        and any(c.isdigit() for c in segment)
        and any(c.isalpha() for c in segment)
    )


def redact(url: str) -> str:
    """``url`` without credentials, query or fragment, and with every token-like path segment
    masked."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    path = "/".join(MASK if _token_like(unquote(s)) else s for s in parts.path.split("/"))
    return urlunsplit((parts.scheme, host, path, "", ""))


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_QUERY_WORDS)


def secret_parts(url: str, *, every_query_value: bool = True) -> list[str]:
    """What of ``url`` must never reach a log, in every form it may be written in: the
    username and password, every query value, every token-like path segment. Each comes
    as written, percent-decoded and percent-encoded (as requests re-quotes it); a username
    and password also as the HTTP Basic credentials requests makes of them. Empty for what
    is not a URL.

    ``every_query_value=False`` keeps the query values whose names say nothing secret (a
    ``DATABASE_URL``'s ``sslmode=require`` would otherwise mask "require" in every line); a
    forward target's query is all secret, since a receiver's token can have any name."""
    try:
        parts = urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:  # not a URL after all (e.g. an invalid port)
        return []
    written: list[str] = [p for p in (username, password) if p]
    for piece in parts.query.split("&"):
        name, equals, value = piece.partition("=")
        if not equals:
            written.append(name)  # a bare ``?token`` is a value too
        elif every_query_value or _secret_name(unquote_plus(name)) or _token_like(value):
            written.append(value)
    written += [s for s in parts.path.split("/") if _token_like(unquote(s))]
    found: list[str] = []
    for text in written:
        for plain in dict.fromkeys((unquote(text), unquote_plus(text))):
            found += [text, plain, quote(plain, safe=""), quote_plus(plain)]
            found.append(quote(plain, safe=_REQUESTS_SAFE))
    if username is not None or password is not None:
        pair = f"{unquote(username or '')}:{unquote(password or '')}"
        found.append(base64.b64encode(pair.encode()).decode())
    return list(dict.fromkeys(item for item in found if item))


def fingerprint(text: str) -> str:
    """A short stable id for ``text`` that does not reveal it."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def target_label(target: str | None) -> str | None:
    """How a handler target is named in logs and dead letters: redacted, plus its
    fingerprint so the exact target can be found again among the configured ones."""
    return None if target is None else f"{redact(target)}#{fingerprint(target)}"
