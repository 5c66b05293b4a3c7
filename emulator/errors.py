"""Errors raised by the emulator, its control client and its process manager."""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """Base class of every emulator error."""


class ValidationError(EmulatorError):
    """A control-API request carried an invalid field."""


class ConflictError(EmulatorError):
    """A control-API request would create something that already exists."""


class EmulatorStartError(EmulatorError):
    """The emulator subprocess did not come up."""


class ControlError(EmulatorError):
    """The control API answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"emulator control API answered {status}: {body}")
        self.status = status
        self.body = body


_DEFAULT_MESSAGES = {
    400: "Bad Request",
    401: "Authenticate",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class TwilioApiError(EmulatorError):
    """An error answered to an API client in Twilio's JSON error shape."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body Twilio sends with this error."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }

    @classmethod
    def for_status(cls, status: int, *, retry_after: int | None = None) -> TwilioApiError:
        """A generic error for ``status``: 5xx use code 20500, others 20000 + status."""
        code = 20500 if status >= 500 else 20000 + status
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        message = _DEFAULT_MESSAGES.get(status, "Error")
        return cls(status, code, message, headers=headers)

    @classmethod
    def not_found(cls, path: str) -> TwilioApiError:
        return cls(404, 20404, f"The requested resource {path} was not found")

    @classmethod
    def unauthorized(cls) -> TwilioApiError:
        return cls(401, 20003, "Authenticate", headers={"WWW-Authenticate": _BASIC_CHALLENGE})

    @classmethod
    def bad_parameter(cls, message: str, code: int = 20001) -> TwilioApiError:
        return cls(400, code, message)


_BASIC_CHALLENGE = 'Basic realm="Twilio API"'
