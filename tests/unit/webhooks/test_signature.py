"""The signed URL and the signature check, without Flask."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from tests.unit.webhooks.helpers import sign_pairs
from webhooks.errors import SignatureError
from webhooks.signature import callback_url, compute_signature, verify_signature

# Twilio's published test vector (token 12345).
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
]
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
VECTOR_SIGNATURE_WITH_PORT = "kvajT1Ptam85bY51eRf/AJRuM3w="


def vector_url(**overrides: str) -> str:
    parts = {
        "scheme": "https",
        "host": "mycompany.com",
        "root_path": "",
        "path": "/myapp.php",
        "query_string": "foo=1&bar=2",
    } | overrides
    return callback_url(**parts)


def test_the_vector_url_is_rebuilt_from_the_request_parts() -> None:
    assert vector_url() == VECTOR_URL


@pytest.mark.parametrize("signature", [VECTOR_SIGNATURE, VECTOR_SIGNATURE_WITH_PORT])
@pytest.mark.parametrize("host", ["mycompany.com", "mycompany.com:443"])
def test_the_vectors_pass_with_and_without_the_default_port(signature: str, host: str) -> None:
    verify_signature(vector_url(host=host), VECTOR_PARAMS, signature, [VECTOR_TOKEN])


def test_the_url_with_port_is_what_the_port_vector_signs() -> None:
    assert vector_url(host="mycompany.com:443") == "https://mycompany.com:443/myapp.php?foo=1&bar=2"


@pytest.mark.parametrize(
    "base",
    [
        "https://mycompany.com",
        "https://mycompany.com/",
    ],
)
def test_public_base_url_replaces_scheme_and_host(base: str) -> None:
    url = vector_url(scheme="http", host="10.0.0.7:8000", public_base_url=base)
    assert url == VECTOR_URL
    verify_signature(url, VECTOR_PARAMS, VECTOR_SIGNATURE, [VECTOR_TOKEN])


def test_public_base_url_may_carry_a_path_prefix() -> None:
    url = callback_url(
        scheme="http",
        host="internal",
        root_path="",
        path="/twilio/room-events",
        query_string="tenant=a%20b",
        public_base_url="https://example.com/hooks/",
    )
    assert url == "https://example.com/hooks/twilio/room-events?tenant=a%20b"


def test_without_public_base_url_the_request_host_and_root_path_are_used() -> None:
    url = callback_url(
        scheme="http", host="localhost:5000", root_path="/app/", path="/x", query_string=""
    )
    assert url == "http://localhost:5000/app/x"


def test_the_query_string_is_kept_exactly_as_received() -> None:
    # request.url would decode these (%41 -> A, %C3%A9 -> é); Twilio signed them encoded.
    url = vector_url(query_string="a=%41&b=caf%C3%A9&c=x+y")
    assert url == "https://mycompany.com/myapp.php?a=%41&b=caf%C3%A9&c=x+y"


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        (VECTOR_URL, VECTOR_PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8X"),  # altered
        (VECTOR_URL, VECTOR_PARAMS[:-1], VECTOR_SIGNATURE),  # a parameter dropped
        (VECTOR_URL, [*VECTOR_PARAMS, ("Extra", "1")], VECTOR_SIGNATURE),  # one added
        (VECTOR_URL.replace("https", "http"), VECTOR_PARAMS, VECTOR_SIGNATURE),  # scheme
        (VECTOR_URL.replace("foo=1", "foo=2"), VECTOR_PARAMS, VECTOR_SIGNATURE),  # query
    ],
)
def test_anything_changed_fails(url: str, params: list[tuple[str, str]], signature: str) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(url, params, signature, [VECTOR_TOKEN])


@pytest.mark.parametrize("signature", [None, ""])
def test_a_missing_signature_fails(signature: str | None) -> None:
    with pytest.raises(SignatureError, match="no X-Twilio-Signature"):
        verify_signature(VECTOR_URL, VECTOR_PARAMS, signature, [VECTOR_TOKEN])


def test_the_wrong_token_fails() -> None:
    with pytest.raises(SignatureError):
        verify_signature(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE, ["54321"])


@pytest.mark.parametrize("tokens", [["54321", "12345"], ["12345", "54321"]])
def test_a_signature_made_with_either_token_passes(tokens: list[str]) -> None:
    verify_signature(VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE, tokens)


def test_a_get_signs_the_url_alone() -> None:
    url = vector_url(query_string="CallSid=CA1234567890ABCDE&Digits=1234")
    signature = sign_pairs(url, [], VECTOR_TOKEN)
    verify_signature(url, [], signature, [VECTOR_TOKEN])
    with pytest.raises(SignatureError):
        verify_signature(url, [("CallSid", "CA1234567890ABCDE")], signature, [VECTOR_TOKEN])


def test_repeated_parameters_are_signed_value_by_value() -> None:
    pairs = [("A", "2"), ("B", "x"), ("A", "1")]
    signature = sign_pairs(VECTOR_URL, pairs, VECTOR_TOKEN)
    verify_signature(VECTOR_URL, pairs, signature, [VECTOR_TOKEN])
    with pytest.raises(SignatureError):
        verify_signature(VECTOR_URL, [("A", "2"), ("B", "x")], signature, [VECTOR_TOKEN])


@given(
    token=st.text(min_size=1, max_size=40),
    url=st.text(max_size=60),
    pairs=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=12),
)
def test_compute_signature_is_twilios(token: str, url: str, pairs: list[tuple[str, str]]) -> None:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    expected = RequestValidator(token).compute_signature(url, MultiDict(pairs))
    assert compute_signature(token, url, grouped) == expected


@pytest.mark.parametrize("signature", ["RSOYDt4T1cUTdK1PDd93/VVr8B8\u00e9", "\u2603", "\udcff"])
def test_a_signature_that_is_not_ascii_fails_as_a_mismatch(signature: str) -> None:
    # compare_digest raises TypeError on non-ASCII text: that was a 500.
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(VECTOR_URL, VECTOR_PARAMS, signature, [VECTOR_TOKEN])
