"""ALLOWED_HOSTS matching and the HTTP Basic check, without Flask."""

from __future__ import annotations

import pytest

from webhooks.errors import BasicAuthRequired, HostNotAllowed
from webhooks.intake.access import check_basic_auth, check_host, host_allowed

ALLOWED = ("hooks.example.com", "alt.example.com:8443", "[::1]:8000")


@pytest.mark.parametrize(
    ("host", "scheme"),
    [
        ("hooks.example.com", "https"),
        ("HOOKS.example.com", "https"),
        ("hooks.example.com:443", "https"),
        ("hooks.example.com", "http"),
        ("hooks.example.com:80", "http"),
        ("alt.example.com:8443", "https"),
        ("[::1]:8000", "http"),
    ],
)
def test_listed_hosts_pass(host: str, scheme: str) -> None:
    assert host_allowed(host, scheme, ALLOWED)
    check_host(host, scheme, ALLOWED)


@pytest.mark.parametrize(
    ("host", "scheme"),
    [
        ("staging.example.com", "https"),
        ("hooks.example.com:8443", "https"),  # a port not listed is another URL
        ("hooks.example.com:80", "https"),
        ("alt.example.com", "https"),
        ("hooks.example.com.evil.example", "https"),
        ("user@hooks.example.com", "https"),
        ("hooks.example.com:notaport", "https"),
        ("hooks.example.com:99999", "https"),
        ("hooks.example.com/path", "https"),
        ("", "https"),
    ],
)
def test_other_hosts_are_refused(host: str, scheme: str) -> None:
    assert not host_allowed(host, scheme, ALLOWED)
    with pytest.raises(HostNotAllowed) as caught:
        check_host(host, scheme, ALLOWED)
    assert caught.value.status == 400


def test_the_right_credentials_pass() -> None:
    check_basic_auth(("twilio", "s3cret:pw"), "twilio", "s3cret:pw")


@pytest.mark.parametrize(
    "given",
    [None, ("twilio", "wrong"), ("other", "s3cret:pw"), ("", ""), ("twilio", ""), ("\udcff", "x")],
)
def test_missing_or_wrong_credentials_are_401_with_a_challenge(
    given: tuple[str, str] | None,
) -> None:
    with pytest.raises(BasicAuthRequired) as caught:
        check_basic_auth(given, "twilio", "s3cret:pw")
    assert caught.value.status == 401
    assert caught.value.headers == {"WWW-Authenticate": 'Basic realm="roomrec"'}
    assert "s3cret" not in caught.value.detail + caught.value.reason
