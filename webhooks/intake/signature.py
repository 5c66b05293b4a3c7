"""Checking ``X-Twilio-Signature``: which URL Twilio signed, and whether the signature matches.

Pure functions, no Flask: the view hands in the parts of the request.

Twilio signs the URL exactly as it called it, query string included and percent-encoding as
sent. ``request.url`` is not that URL (werkzeug decodes ``%C3%A9`` to ``é`` and ``%41`` to
``A`` in it), so the URL is rebuilt here from the raw query string.

What a signature is made with:

- without ``X-Twilio-Webhooks-Signature-Settings``: the auth token of the callback's account
  (or its secondary one during a rotation), HMAC-SHA1, as Twilio always did;
- with it (Twilio's Webhooks configuration API): the secret of the SharedKey it names, with the
  algorithm it names, and nothing else.

Credentials in the callback URL (``https://user:password@host/...``): Twilio sends them as an
``Authorization: Basic`` header, and the request's ``Host`` has no userinfo. Twilio does not
document whether the URL it signs keeps them; twilio-python's validator signs whatever URL it is
given (its ``remove_port`` even mangles a netloc with userinfo). So the URL without them is
checked first, then, once the Basic credentials are verified, the URL with them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from schemas.accounts import check_key_id
from webhooks.errors import (
    InvalidSignatureSettings,
    SignatureError,
    SignedWithAuthToken,
    UnknownSigningKey,
    UnsupportedSignatureAlgorithm,
)

__all__ = [
    "HMAC_SHA1",
    "HMAC_SHA256",
    "SIGNATURE_HEADER",
    "SIGNATURE_SETTINGS_HEADER",
    "SignatureSettings",
    "account_sid_of",
    "callback_url",
    "check_signature",
    "compute_signature",
    "parse_signature_settings",
    "verify_signature",
    "with_userinfo",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
# Twilio's header is about 60 characters; anything much longer is not Twilio's.
SETTINGS_MAX_LENGTH = 256
_HASHES: dict[str, Callable[..., hashlib._Hash]] = {
    HMAC_SHA1: hashlib.sha1,
    HMAC_SHA256: hashlib.sha256,
}
# Characters of a userinfo part Twilio would send unencoded (RFC 3986 sub-delims, unreserved).
_USERINFO_SAFE = "!$&'()*+,;="

# What werkzeug leaves unquoted in a path: sub-delimiters and "%" for what is already quoted.
_PATH_SAFE = "!$&'()*+,/:;=@%"


def callback_url(
    *,
    scheme: str,
    host: str,
    root_path: str,
    path: str,
    query_string: str,
    public_base_url: str | None = None,
) -> str:
    """The URL Twilio called, as it signed it.

    ``public_base_url`` (``PUBLIC_BASE_URL``), when set, is the public URL of the app's root and
    replaces ``scheme://host/root_path`` entirely: neither the request's scheme, nor its Host,
    nor its ``SCRIPT_NAME`` then changes the URL a signature is checked against (a callback
    signed for another deployment of the same account fails). ``query_string`` is the raw one,
    as received.
    """
    if public_base_url:
        base = public_base_url.rstrip("/")
    else:
        base = f"{scheme}://{host}{quote(root_path.rstrip('/'), safe=_PATH_SAFE)}"
    url = base + "/" + quote(path.lstrip("/"), safe=_PATH_SAFE)
    return f"{url}?{query_string}" if query_string else url


def with_userinfo(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` before its host, as it reads in Twilio's configuration."""
    scheme, separator, rest = url.partition("://")
    userinfo = f"{quote(user, safe=_USERINFO_SAFE)}:{quote(password, safe=_USERINFO_SAFE)}"
    return f"{scheme}{separator}{userinfo}@{rest}"


@functools.lru_cache(maxsize=8)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


@dataclass(frozen=True, slots=True)
class SignatureSettings:
    """What ``X-Twilio-Webhooks-Signature-Settings`` names: a SharedKey and an algorithm."""

    key_id: str
    algorithm: str


def parse_signature_settings(header: str) -> SignatureSettings:
    """``key=<key id>,algorithm=HMAC_SHA256`` (or ``HMAC_SHA1``) read, in one pass over at most
    :data:`SETTINGS_MAX_LENGTH` characters (no regular expression).

    Raises :class:`InvalidSignatureSettings` for a header that is not that (too long, not
    printable ASCII, an item without ``=``, a name given twice, no ``key`` or one that cannot
    be a key id) and
    :class:`UnsupportedSignatureAlgorithm` for another algorithm. Other names are ignored:
    Twilio may add some. Without ``algorithm`` it is HMAC_SHA1, as twilio-python reads it.
    """
    if len(header) > SETTINGS_MAX_LENGTH:
        raise _bad_settings(f"header of {len(header)} characters")
    if not (header.isascii() and header.isprintable()):
        raise _bad_settings("header is not printable ASCII")
    named: dict[str, str] = {}
    for item in header.split(","):
        name, separator, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not separator or not name or not value:
            raise _bad_settings(f"item {item!r} is not name=value")
        if name in named:
            raise _bad_settings(f"{name!r} given twice")
        named[name] = value
    key_id = named.get("key")
    if not key_id:
        raise _bad_settings("no key=")
    if problem := check_key_id(key_id):
        raise _bad_settings(problem)
    algorithm = get_signature_algorithm(header).upper()  # the library's reading of it
    if algorithm not in _HASHES:
        raise UnsupportedSignatureAlgorithm(
            f"Signatures made with {HMAC_SHA1} or {HMAC_SHA256} are accepted.",
            reason=f"algorithm {algorithm!r} of key {key_id!r}",
        )
    return SignatureSettings(key_id=key_id, algorithm=algorithm)


def _bad_settings(reason: str) -> InvalidSignatureSettings:
    return InvalidSignatureSettings(
        f"The {SIGNATURE_SETTINGS_HEADER} header is not key=<key id>,algorithm=<algorithm>.",
        reason=reason,
    )


class _MultiValued(dict[str, list[str]]):
    """Parameters as ``RequestValidator`` reads repeated ones: it calls ``getlist(name)``."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def compute_signature(
    token: str, url: str, params: Mapping[str, Sequence[str]], algorithm: str = HMAC_SHA1
) -> str:
    """The signature Twilio makes with ``token`` (an auth token or a SharedKey's secret):
    base64 of the HMAC (SHA-1, or SHA-256 with ``algorithm=HMAC_SHA256``) of ``url`` followed
    by every parameter name and value, names sorted, each distinct value of a name sorted.

    The same as ``RequestValidator(token).compute_signature(url, params, algorithm)``, built in
    one pass (that one costs about three times as much per callback).
    """
    signed = url + "".join(
        name + value for name in sorted(params) for value in sorted(set(params[name]))
    )
    digest = hmac.new(token.encode(), signed.encode(), _HASHES[algorithm.upper()]).digest()
    return base64.b64encode(digest).decode()


def account_sid_of(params: Iterable[tuple[str, str]]) -> str | None:
    """The ``AccountSid`` the received parameters name, read before they are verified only to
    choose the tokens to verify them with; None when absent or given with different values."""
    values = {value for name, value in params if name == "AccountSid"}
    return values.pop() if len(values) == 1 else None


def _same(computed: str, given: str) -> bool:
    """Constant-time comparison. A signature is base64, hence ASCII; a header value may hold
    any character, which ``compare_digest`` refuses with a TypeError."""
    return given.isascii() and hmac.compare_digest(computed, given)


def _group(params: Iterable[tuple[str, str]]) -> _MultiValued:
    grouped = _MultiValued()
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    return grouped


def _matches(
    urls: Sequence[str],
    grouped: _MultiValued,
    signature: str,
    secrets: Sequence[str],
    algorithm: str,
) -> bool:
    # Each URL as received first: one HMAC. validate() computes the port variants too (two or
    # three HMACs); it is only needed when none of these matches.
    for url in urls:
        for secret in secrets:
            if _same(compute_signature(secret, url, grouped, algorithm), signature):
                return True
    return any(
        _validator(secret).validate(url, grouped, signature, algorithm)
        for url in urls
        for secret in secrets
    )


def _missing() -> SignatureError:
    return SignatureError(
        f"The request has no {SIGNATURE_HEADER} header.", reason="signature missing"
    )


def _mismatch(url: str) -> SignatureError:
    return SignatureError(
        f"The {SIGNATURE_HEADER} header does not match the request.",
        reason=f"signature does not match for {url!r}",
    )


def verify_signature(
    url: str | Sequence[str],
    params: Iterable[tuple[str, str]],
    signature: str | None,
    tokens: Sequence[str],
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is the one Twilio makes with one of
    ``tokens`` (the auth token, then the secondary one during a rotation), HMAC-SHA1, for
    ``url`` (or one of several spellings of it) and ``params`` (every (name, value) pair
    received; none for a GET).

    The validator tries the URL with and without the scheme's default port, and signs each
    distinct value of a repeated parameter.
    """
    urls = [url] if isinstance(url, str) else url
    if not signature:
        raise _missing()
    if not _matches(urls, _group(params), signature, tokens, HMAC_SHA1):
        raise _mismatch(urls[0])


def check_signature(
    urls: Sequence[str],
    params: Iterable[tuple[str, str]],
    signature: str | None,
    *,
    settings_header: str | None,
    tokens: Sequence[str],
    shared_keys: Mapping[str, str],
) -> None:
    """Whether a callback is signed as it must be; raises a :class:`SignatureError` saying why
    not.

    ``urls`` are the URL Twilio called, then other spellings of it (with the Basic credentials);
    ``tokens`` the auth tokens of the callback's account; ``shared_keys`` every SharedKey id
    and its secret. Without ``settings_header`` (``X-Twilio-Webhooks-Signature-Settings``) the
    signature must be made with one of ``tokens``, HMAC-SHA1. With it, only with the key and
    the algorithm it names; a signature made with the auth token instead is told apart
    (:class:`SignedWithAuthToken`), so that an operator sees which secret Twilio used.
    """
    if settings_header is None:
        verify_signature(urls, params, signature, tokens)
        return
    settings = parse_signature_settings(settings_header)
    secret = shared_keys.get(settings.key_id)
    if secret is None:
        raise UnknownSigningKey(
            f"The {SIGNATURE_SETTINGS_HEADER} header names a key this service does not hold.",
            reason=f"unknown key {settings.key_id!r}",
        )
    if not signature:
        raise _missing()
    grouped = _group(params)
    if _matches(urls, grouped, signature, [secret], settings.algorithm):
        return
    if tokens and any(
        _matches(urls, grouped, signature, tokens, algorithm)
        for algorithm in dict.fromkeys((settings.algorithm, HMAC_SHA1))
    ):
        raise SignedWithAuthToken(
            f"The {SIGNATURE_SETTINGS_HEADER} header names a SharedKey, and the signature was "
            "made with the auth token.",
            reason=f"signed with the auth token, not key {settings.key_id!r}",
        )
    raise _mismatch(urls[0])
