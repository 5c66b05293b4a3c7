"""TWILIO_ACCOUNTS, TWILIO_WEBHOOK_SHARED_KEYS and the web's start-up checks of the URL a
signature is bound to and of its HTTP Basic credentials."""

from __future__ import annotations

import json

import pytest

from schemas.accounts import SharedKey
from schemas.settings import ConfigurationError, WebSettings, WebSettingsSchema, load_settings
from tests.support.twilio import ACCOUNT_SID, sid
from workers.observability.logs import settings_secrets

TOKEN = "main-token-0f1e2d3c4b5a6978"
OTHER_SID = sid("AC")
OTHER_TOKEN = "other-token-8899aabbccddeeff"
BOUND = {"PUBLIC_BASE_URL": "https://prod.example"}


def web(**env: str) -> WebSettings:
    settings = load_settings(WebSettingsSchema(), {"TWILIO_AUTH_TOKEN": TOKEN} | BOUND | env)
    assert isinstance(settings, WebSettings)
    return settings


def web_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(WebSettingsSchema(), env)
    return str(caught.value)


# --- bound to this service's URL -------------------------------------------------------------


def test_without_public_base_url_or_allowed_hosts_the_web_refuses_to_start() -> None:
    message = web_error({"TWILIO_AUTH_TOKEN": TOKEN})
    for name in ("PUBLIC_BASE_URL", "ALLOWED_HOSTS", "DEV_MODE"):
        assert name in message


@pytest.mark.parametrize(
    "env",
    [{"PUBLIC_BASE_URL": "https://prod.example"}, {"ALLOWED_HOSTS": "prod.example"},
     {"DEV_MODE": "1"}],
)  # fmt: skip
def test_either_binds_the_url(env: dict[str, str]) -> None:
    load_settings(WebSettingsSchema(), {"TWILIO_AUTH_TOKEN": TOKEN} | env)


def test_dev_mode_0_does_not_bind_anything() -> None:
    assert "PUBLIC_BASE_URL" in web_error({"TWILIO_AUTH_TOKEN": TOKEN, "DEV_MODE": "0"})


def test_allowed_hosts_are_read_lower_case() -> None:
    settings = web(ALLOWED_HOSTS=" Prod.Example , prod.example:8443,[::1]:8000")
    assert settings.allowed_hosts == ("prod.example", "prod.example:8443", "[::1]:8000")


@pytest.mark.parametrize(
    "hosts", ["https://prod.example", "prod.example/path", "user@prod.example", "prod:99999",
              "prod:0", "prod:port"],
)  # fmt: skip
def test_a_malformed_allowed_host_is_named(hosts: str) -> None:
    message = web_error({"TWILIO_AUTH_TOKEN": TOKEN, "ALLOWED_HOSTS": hosts})
    assert "ALLOWED_HOSTS" in message


@pytest.mark.parametrize(
    "url",
    ["https://user:pw@prod.example", "https://prod.example/?a=1", "https://prod.example/#x",
     "ftp://prod.example"],
)  # fmt: skip
def test_a_public_base_url_that_cannot_be_signed_is_refused(url: str) -> None:
    message = web_error({"TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": url})
    assert "PUBLIC_BASE_URL" in message and "pw" not in message


# --- SharedKeys ------------------------------------------------------------------------------


def test_shared_keys_are_read_in_order_and_hidden_from_repr() -> None:
    settings = web(TWILIO_WEBHOOK_SHARED_KEYS="old_key=c2VjcmV0MQ==, new_key=secret-two")
    assert settings.twilio_webhook_shared_keys == (
        SharedKey("old_key", "c2VjcmV0MQ=="),  # base64 padding stays in the secret
        SharedKey("new_key", "secret-two"),
    )
    assert "c2VjcmV0MQ" not in repr(settings) and "secret-two" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("just-a-secret-value", "Entry 1"),
        ("a=one,just-a-secret-value", "Entry 2"),
        ("a=", "Key a"),
        ("a=one,a=two", "Key a"),
        ("=orphan-secret", "Entry 1"),
        ("bad id=secret-value", "Entry 1"),
        ("caf\u00e9=secret-value", "Entry 1"),
    ],
)
def test_a_malformed_shared_key_is_named_without_its_secret(value: str, named: str) -> None:
    message = web_error({"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_WEBHOOK_SHARED_KEYS": value} | BOUND)
    assert "TWILIO_WEBHOOK_SHARED_KEYS" in message and named in message
    for secret in ("secret-value", "just-a-secret", "orphan-secret", "one", "two"):
        assert secret not in message


# --- HTTP Basic ------------------------------------------------------------------------------


def test_basic_credentials_are_split_at_the_first_colon() -> None:
    settings = web(TWILIO_WEBHOOK_BASIC_AUTH="twilio:pa:ss")
    assert settings.webhook_basic_auth_user == "twilio"
    assert settings.webhook_basic_auth_password == "pa:ss"
    assert "pa:ss" not in repr(settings)


@pytest.mark.parametrize("value", ["no-colon-secret", ":no-user-secret", "user:"])
def test_malformed_basic_credentials_are_named_without_them(value: str) -> None:
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_WEBHOOK_BASIC_AUTH": value} | BOUND
    message = web_error(env)
    assert "TWILIO_WEBHOOK_BASIC_AUTH" in message and "secret" not in message


# --- several accounts ------------------------------------------------------------------------


def accounts_json(**accounts: dict[str, str]) -> str:
    return json.dumps(accounts)


def test_several_accounts_are_looked_up_by_sid() -> None:
    settings = web(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_ACCOUNTS=accounts_json(**{OTHER_SID: {"auth_token": OTHER_TOKEN}}),
    )
    accounts = settings.accounts
    assert accounts.multi
    main, other = accounts.get(ACCOUNT_SID), accounts.get(OTHER_SID)
    assert main is not None and main.auth_tokens == (TOKEN,)
    assert other is not None and other.auth_tokens == (OTHER_TOKEN,)
    assert accounts.get(sid("AC")) is None and accounts.get(None) is None
    assert OTHER_TOKEN not in repr(settings)


def test_a_single_account_serves_any_account_sid() -> None:
    accounts = web(TWILIO_AUTH_TOKEN_SECONDARY="next-token-aabbccdd").accounts
    assert not accounts.multi
    account = accounts.get(sid("AC"))
    assert account is not None and account.auth_tokens == (TOKEN, "next-token-aabbccdd")
    assert accounts.get(None) is account


def test_only_twilio_accounts_needs_no_auth_token() -> None:
    env = {"TWILIO_ACCOUNTS": accounts_json(**{OTHER_SID: {"auth_token": OTHER_TOKEN}})} | BOUND
    settings = load_settings(WebSettingsSchema(), env)
    assert settings.accounts.get(OTHER_SID) is not None
    assert settings.accounts.get(ACCOUNT_SID) is None


def test_the_main_account_with_twilio_accounts_needs_its_sid() -> None:
    env = {
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNTS": accounts_json(**{OTHER_SID: {"auth_token": OTHER_TOKEN}}),
    } | BOUND
    assert "TWILIO_ACCOUNT_SID" in web_error(env)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("{not json", "Not valid JSON"),
        ("[]", "JSON object"),
        ("{}", "JSON object"),
        (accounts_json(AC123={"auth_token": "x"}), "AC123"),
        (accounts_json(**{OTHER_SID: {"api_key_sid": "SK" + "0" * 32}}), OTHER_SID),
    ],
)
def test_malformed_twilio_accounts_are_named(value: str, named: str) -> None:
    message = web_error({"TWILIO_ACCOUNTS": value} | BOUND)
    assert "TWILIO_ACCOUNTS" in message and named in message


def test_a_web_account_without_its_auth_token_is_refused() -> None:
    entry = {"api_key_sid": "SK" + "0" * 32, "api_key_secret": "key-secret-value"}
    message = web_error({"TWILIO_ACCOUNTS": accounts_json(**{OTHER_SID: entry})} | BOUND)
    assert "auth_token" in message and "key-secret-value" not in message


def test_every_new_secret_is_masked_in_logs() -> None:
    settings = web(
        TWILIO_WEBHOOK_SHARED_KEYS="k1=shared-secret-one,k2=shared-secret-two",
        TWILIO_WEBHOOK_BASIC_AUTH="twilio:basic-secret-pw",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_ACCOUNTS=accounts_json(**{OTHER_SID: {"auth_token": OTHER_TOKEN}}),
    )
    masked = set(settings_secrets(settings))
    assert {"shared-secret-one", "shared-secret-two", "basic-secret-pw", OTHER_TOKEN} <= masked
    assert not {"k1", "k2", "twilio"} & masked  # ids and the user name stay readable
