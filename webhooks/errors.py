"""The errors a request to the web side is refused with. Each becomes one problem document
(RFC 9457) in :mod:`webhooks.problems`; none imports Flask."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar


class WebError(Exception):
    """Base of every refusal the web answers with a problem document."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    log_level: ClassVar[int] = logging.WARNING

    def __init__(
        self,
        detail: str,
        *,
        errors: Mapping[str, Sequence[str]] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = {name: list(messages) for name, messages in (errors or {}).items()}
        # For the log only: may say more than the client is told (e.g. the URL checked).
        self.reason = reason or detail

    @property
    def headers(self) -> dict[str, str]:
        return {}


class SignatureError(WebError):
    """``X-Twilio-Signature`` is missing or does not match the request."""

    status = 403
    slug = "invalid-signature"
    title = "Invalid signature"


class SignedWithAuthToken(SignatureError):
    """The request names a SharedKey but its signature was made with the auth token."""

    slug = "signed-with-auth-token"
    title = "Signed with the auth token instead of the SharedKey"


class UnknownSigningKey(SignatureError):
    """``X-Twilio-Webhooks-Signature-Settings`` names a SharedKey this service does not hold."""

    slug = "unknown-signing-key"
    title = "Unknown signing key"


class UnsupportedSignatureAlgorithm(SignatureError):
    """``X-Twilio-Webhooks-Signature-Settings`` names an algorithm other than HMAC_SHA1/256."""

    slug = "unsupported-signature-algorithm"
    title = "Unsupported signature algorithm"


class InvalidSignatureSettings(SignatureError):
    """``X-Twilio-Webhooks-Signature-Settings`` is not ``key=<id>,algorithm=<name>``."""

    slug = "invalid-signature-settings"
    title = "Invalid signature settings"


class UnknownAccount(SignatureError):
    """The callback's ``AccountSid`` is not an account this service serves."""

    slug = "unknown-account"
    title = "Unknown account"


class HostNotAllowed(WebError):
    """The request's ``Host`` is not in ``ALLOWED_HOSTS``: a signature is not checked for it."""

    status = 400
    slug = "host-not-allowed"
    title = "Host not allowed"


class BasicAuthRequired(WebError):
    """``TWILIO_WEBHOOK_BASIC_AUTH`` is set and the request lacks the right credentials."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"
    realm = "roomrec"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Basic realm="{self.realm}"'}


class UnsupportedContentType(WebError):
    """A POST whose body is not ``application/x-www-form-urlencoded``."""

    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class BadRequestParams(WebError):
    """The parameters do not describe a valid callback; ``errors`` names each one."""

    slug = "invalid-parameters"
    title = "Invalid callback parameters"


class UnknownEvent(BadRequestParams):
    """``StatusCallbackEvent`` is missing or names an event this service does not know."""

    slug = "unknown-event"
    title = "Unknown event"


class RepeatedParams(BadRequestParams):
    """A parameter was sent more than once with different values."""

    slug = "repeated-parameter"
    title = "Repeated parameter"


class InvalidEncoding(BadRequestParams):
    """The form body or query string is not valid UTF-8."""

    slug = "invalid-encoding"
    title = "Invalid encoding"


class ServiceUnavailable(WebError):
    """Base of the 503s: what the request needs did not answer; retry after ``Retry-After``."""

    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"
    log_level = logging.ERROR
    retry_after: ClassVar[int] = 5

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class QueueUnavailable(ServiceUnavailable):
    """The queue did not take the event in time; the sender should retry later."""

    slug = "queue-unavailable"
    title = "Queue unavailable"


class NotReady(QueueUnavailable):
    """A readiness probe found the queue unreachable."""

    slug = "not-ready"
    title = "Not ready"
    log_level = logging.WARNING


class StaleCallback(WebError):
    """A validly signed callback whose ``Timestamp`` is older than ``CALLBACK_MAX_AGE``: a
    replay, refused like an expired credential (403, as S3's ``RequestTimeTooSkewed``)."""

    status = 403
    slug = "stale-callback"
    title = "Stale callback"


class CallbackFromTheFuture(StaleCallback):
    """A validly signed callback whose ``Timestamp`` is more than ``CALLBACK_MAX_SKEW`` ahead."""

    slug = "callback-from-the-future"
    title = "Callback from the future"


class TooManyParams(BadRequestParams):
    """More parameters than any callback carries; refused before the signature is computed."""

    slug = "too-many-parameters"
    title = "Too many parameters"


class ParamNameTooLong(BadRequestParams):
    """A parameter name longer than any Twilio sends; refused before the signature."""

    slug = "parameter-name-too-long"
    title = "Parameter name too long"


class SpoolFull(QueueUnavailable):
    """The queue is unreachable and the spool holds ``SPOOL_MAX_EVENTS`` already."""

    slug = "spool-full"
    title = "Spool full"
    retry_after = 30
