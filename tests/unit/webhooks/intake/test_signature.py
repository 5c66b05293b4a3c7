"""The signed URL and the signature check, without Flask."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from tests.unit.webhooks.helpers import sign_pairs
from webhooks.errors import (
    InvalidSignatureSettings,
    SignatureError,
    SignedWithAuthToken,
    UnknownSigningKey,
    UnsupportedSignatureAlgorithm,
)
from webhooks.intake.signature import (
    HMAC_SHA1,
    HMAC_SHA256,
    SignatureSettings,
    account_sid_of,
    callback_url,
    check_signature,
    compute_signature,
    parse_signature_settings,
    verify_signature,
    with_userinfo,
)

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


# --- SharedKeys, Basic credentials in the URL, PUBLIC_BASE_URL ------------------------------

KEY_ID = "webhooks_sharedkey_0123"
KEY_SECRET = "shared-key-secret-9f8e7d6c5b4a"
KEYS = {KEY_ID: KEY_SECRET, "webhooks_sharedkey_next": "the-next-secret-0a1b2c"}


def settings_header(key: str = KEY_ID, algorithm: str = HMAC_SHA256) -> str:
    return f"key={key},algorithm={algorithm}"


def sign_with(secret: str, algorithm: str, url: str = VECTOR_URL) -> str:
    return RequestValidator(secret).compute_signature(url, MultiDict(VECTOR_PARAMS), algorithm)


def check(signature: str | None, header: str | None, *, url: str = VECTOR_URL) -> None:
    check_signature(
        [url], VECTOR_PARAMS, signature, settings_header=header, tokens=[VECTOR_TOKEN],
        shared_keys=KEYS,
    )  # fmt: skip


@given(
    token=st.text(min_size=1, max_size=40),
    url=st.text(max_size=60),
    pairs=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=12)), max_size=12),
)
def test_compute_signature_is_twilios_with_sha256(
    token: str, url: str, pairs: list[tuple[str, str]]
) -> None:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    expected = RequestValidator(token).compute_signature(url, MultiDict(pairs), HMAC_SHA256)
    assert compute_signature(token, url, grouped, HMAC_SHA256) == expected


@pytest.mark.parametrize("algorithm", [HMAC_SHA256, HMAC_SHA1])
def test_a_shared_key_signature_passes_with_its_algorithm(algorithm: str) -> None:
    check(sign_with(KEY_SECRET, algorithm), settings_header(algorithm=algorithm))
    with pytest.raises(SignatureError, match="does not match"):  # the other algorithm
        other = HMAC_SHA1 if algorithm == HMAC_SHA256 else HMAC_SHA256
        check(sign_with(KEY_SECRET, other), settings_header(algorithm=algorithm))


def test_the_second_key_of_a_rotation_passes() -> None:
    secret = KEYS["webhooks_sharedkey_next"]
    check(sign_with(secret, HMAC_SHA256), settings_header("webhooks_sharedkey_next"))
    with pytest.raises(SignatureError):  # signed with the next key, naming the current one
        check(sign_with(secret, HMAC_SHA256), settings_header())


def test_an_unknown_key_id_is_refused_as_such() -> None:
    with pytest.raises(UnknownSigningKey):
        check(sign_with(KEY_SECRET, HMAC_SHA256), settings_header("webhooks_sharedkey_gone"))


@pytest.mark.parametrize("algorithm", [HMAC_SHA256, HMAC_SHA1])
def test_a_signature_made_with_the_auth_token_is_refused_as_such(algorithm: str) -> None:
    with pytest.raises(SignedWithAuthToken) as caught:
        check(sign_with(VECTOR_TOKEN, algorithm), settings_header())
    assert KEY_SECRET not in str(caught.value) and VECTOR_TOKEN not in caught.value.reason


def test_without_the_header_a_shared_key_signature_is_refused() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        check(sign_with(KEY_SECRET, HMAC_SHA1), None)
    check(VECTOR_SIGNATURE, None)  # the auth token, as before


@pytest.mark.parametrize("signature", [None, ""])
def test_a_named_key_without_a_signature_is_refused(signature: str | None) -> None:
    with pytest.raises(SignatureError, match="no X-Twilio-Signature"):
        check(signature, settings_header())


@pytest.mark.parametrize(
    "header",
    [
        "key=k,algorithm=HMAC_SHA512",
        "key=k,algorithm=md5",
        "key=k, algorithm = NONE",
    ],
)
def test_an_unsupported_algorithm_is_refused_as_such(header: str) -> None:
    with pytest.raises(UnsupportedSignatureAlgorithm):
        parse_signature_settings(header)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "algorithm=HMAC_SHA256",  # no key
        "key=,algorithm=HMAC_SHA256",
        "key=a,key=b,algorithm=HMAC_SHA256",
        "key=a,algorithm=HMAC_SHA1,algorithm=HMAC_SHA256",
        "key=a;algorithm=HMAC_SHA256",  # not name=value items (one item "a;algorithm=...")
        "key=a,,algorithm=HMAC_SHA256",
        "nonsense",
        "key=caf\u00e9,algorithm=HMAC_SHA256",
        "key=a\x00,algorithm=HMAC_SHA256",
        "key=" + "a" * 300 + ",algorithm=HMAC_SHA256",
    ],
)
def test_a_malformed_header_is_refused_as_such(header: str) -> None:
    with pytest.raises(InvalidSignatureSettings):
        parse_signature_settings(header)


def test_the_header_is_read_as_twilio_python_reads_it() -> None:
    parsed = parse_signature_settings(" key = kid , algorithm = hmac_sha256 , version=2")
    assert parsed == SignatureSettings(key_id="kid", algorithm=HMAC_SHA256)
    assert parse_signature_settings("key=kid").algorithm == HMAC_SHA1  # the library's default


def test_a_huge_header_is_refused_at_once() -> None:
    # Linear and bounded: a megabyte of separators is refused by its length alone.
    started = time.perf_counter()
    for header in ("=" * 1_000_000, "key=a," * 200_000, "," * 1_000_000):
        with pytest.raises(InvalidSignatureSettings):
            parse_signature_settings(header)
    assert time.perf_counter() - started < 0.5


def test_a_url_with_the_basic_credentials_is_tried_after_the_url_without() -> None:
    with_credentials = with_userinfo(VECTOR_URL, "twilio", "pa:ss@word")
    assert with_credentials == "https://twilio:pa%3Ass%40word@mycompany.com/myapp.php?foo=1&bar=2"
    signature = sign_with(VECTOR_TOKEN, HMAC_SHA1, with_credentials)
    check_signature(
        [VECTOR_URL, with_credentials], VECTOR_PARAMS, signature, settings_header=None,
        tokens=[VECTOR_TOKEN], shared_keys={},
    )  # fmt: skip
    with pytest.raises(SignatureError):
        check(signature, None)  # the URL without them alone does not match


@given(
    scheme=st.sampled_from(["http", "https", "ftp"]),
    host=st.text(min_size=1, max_size=30),
    root_path=st.text(max_size=20),
)
def test_with_public_base_url_the_request_does_not_change_the_url(
    scheme: str, host: str, root_path: str
) -> None:
    url = callback_url(
        scheme=scheme, host=host, root_path=root_path, path="/twilio/room-events",
        query_string="a=1", public_base_url="https://prod.example",
    )  # fmt: skip
    assert url == "https://prod.example/twilio/room-events?a=1"


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("AccountSid", "AC1"), ("RoomSid", "RM1")], "AC1"),
        ([("AccountSid", "AC1"), ("AccountSid", "AC1")], "AC1"),
        ([("AccountSid", "AC1"), ("AccountSid", "AC2")], None),  # ambiguous: no account
        ([("RoomSid", "RM1")], None),
    ],
)
def test_the_account_sid_chooses_the_tokens(pairs: list[tuple[str, str]], expected: str) -> None:
    assert account_sid_of(pairs) == expected
