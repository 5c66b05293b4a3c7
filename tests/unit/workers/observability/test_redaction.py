"""workers.observability.redaction: a target shown without its secrets; every form of them for the
log redaction."""

from __future__ import annotations

import base64

import pytest

from workers.observability.redaction import MASK, fingerprint, redact, secret_parts, target_label


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@hooks.example.com:8443/in?token=abc#x", "https://hooks.example.com:8443/in"),
        (
            "https://chat.example.com/services/T0123/B0123/aBcD1234eFgH5678iJkL",
            f"https://chat.example.com/services/T0123/B0123/{MASK}",
        ),
        ("https://hooks.example.com/very-long-path-name/in", "https://hooks.example.com/very-long-path-name/in"),
    ],
)  # fmt: skip
def test_redact_drops_userinfo_query_and_token_like_segments(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert target_label(url) == f"{shown}#{fingerprint(url)}"


def test_secret_parts_are_userinfo_query_values_and_path_tokens_in_every_form() -> None:
    url = "https://us%40er:p%2Fw@h.example.com/a/aBcD1234eFgH5678iJkL?token=a+b%2Fc&bare"
    found = set(secret_parts(url))
    assert {"us%40er", "us@er", "p%2Fw", "p/w"} <= found
    assert {"a+b%2Fc", "a b/c", "a+b/c", "a%20b%2Fc", "bare"} <= found
    assert "aBcD1234eFgH5678iJkL" in found
    assert base64.b64encode(b"us@er:p/w").decode() in found  # requests' Basic credentials
    assert not {"h.example.com", "a", "https", "token"} & found


@pytest.mark.parametrize("text", ["not a url", "https://h.example.com:99999/x", "https://h/"])
def test_nothing_is_secret_in_a_url_without_userinfo_query_or_token(text: str) -> None:
    assert secret_parts(text) == []
