"""Who may reach the callback endpoint before its signature is checked: the Host it names
(``ALLOWED_HOSTS``) and HTTP Basic credentials (``TWILIO_WEBHOOK_BASIC_AUTH``).

Pure functions, no Flask: the view hands in the request's parts.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

from schemas.settings import host_and_port
from webhooks.errors import BasicAuthRequired, HostNotAllowed

_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_allowed(host: str, scheme: str, allowed: Collection[str]) -> bool:
    """Whether ``host`` (the request's ``host[:port]``, reached over ``scheme``) is one of
    ``allowed``. An entry without a port stands for the scheme's default port only: a
    signature covers the port, and another port is another URL."""
    requested = host_and_port(host)
    if requested is None:
        return False
    default = _DEFAULT_PORTS.get(scheme)
    wanted = (requested[0], requested[1] or default)
    for entry in allowed:
        listed = host_and_port(entry)
        if listed is not None and (listed[0], listed[1] or default) == wanted:
            return True
    return False


def check_host(host: str, scheme: str, allowed: Collection[str]) -> None:
    """Raise :class:`HostNotAllowed` unless ``host`` is allowed (see :func:`host_allowed`)."""
    if not host_allowed(host, scheme, allowed):
        raise HostNotAllowed(
            "This service does not answer for the host the request names.",
            reason=f"Host {host!r} not in ALLOWED_HOSTS",
        )


def check_basic_auth(
    given: tuple[str, str] | None, expected_user: str, expected_password: str
) -> None:
    """Raise :class:`BasicAuthRequired` unless ``given`` (the (user, password) of the request's
    ``Authorization: Basic``, None without one) is the expected pair.

    Both parts are compared in constant time, the password even when the user differs, so the
    time taken tells nothing about which part was wrong.
    """
    user, password = given or ("", "")
    same_user = hmac.compare_digest(user.encode(errors="surrogatepass"), expected_user.encode())
    same_password = hmac.compare_digest(
        password.encode(errors="surrogatepass"), expected_password.encode()
    )
    if not (same_user & same_password) or given is None:
        raise BasicAuthRequired(
            "This endpoint needs the HTTP Basic credentials set in Twilio's webhook settings.",
            reason="Basic credentials missing" if given is None else "Basic credentials wrong",
        )
