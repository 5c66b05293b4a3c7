"""Which URL the app checks the signature against, end to end: PUBLIC_BASE_URL, proxy
headers, token rotation."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from tests.support.twilio import recording_params, room_params, sign
from tests.unit.webhooks.conftest import AppFactory
from tests.unit.webhooks.helpers import FORM, assert_problem, post_callback, queued
from webhooks.intake.views import CALLBACK_PATH

PUBLIC = "https://hooks.example.com"
PUBLIC_URL = PUBLIC + CALLBACK_PATH


@pytest.mark.parametrize("base", [PUBLIC, PUBLIC + "/"])
def test_public_base_url_is_what_is_checked(make_app: AppFactory, base: str) -> None:
    client = make_app(PUBLIC_BASE_URL=base).test_client()
    params = recording_params()
    assert post_callback(client, params, url=PUBLIC_URL).status_code == 204
    # The URL the app itself sees is no longer accepted.
    assert_problem(post_callback(client, recording_params()), 403)


def test_public_base_url_with_a_path_prefix(make_app: AppFactory) -> None:
    client = make_app(PUBLIC_BASE_URL="https://example.com/roomrec/").test_client()
    url = "https://example.com/roomrec" + CALLBACK_PATH
    assert post_callback(client, recording_params(), url=url).status_code == 204


def test_public_base_url_and_a_query_string(make_app: AppFactory, redis_url: str) -> None:
    client = make_app(PUBLIC_BASE_URL=PUBLIC).test_client()
    query = "tenant=acme&note=caf%C3%A9"
    assert post_callback(client, room_params(), url=PUBLIC_URL, query=query).status_code == 204
    # Signed without the query string: refused.
    response = client.post(
        f"{CALLBACK_PATH}?{query}",
        data=urlencode(params := room_params()),
        content_type=FORM,
        headers={"X-Twilio-Signature": sign(PUBLIC_URL, params)},
    )
    assert_problem(response, 403)
    assert len(queued(redis_url)) == 1


def test_public_base_url_with_the_default_port(make_app: AppFactory) -> None:
    # Twilio may sign https://host:443/...; the validator tries the URL with and without it.
    client = make_app(PUBLIC_BASE_URL=PUBLIC).test_client()
    url = "https://hooks.example.com:443" + CALLBACK_PATH
    assert post_callback(client, recording_params(), url=url).status_code == 204


def test_a_get_with_public_base_url(make_app: AppFactory, redis_url: str) -> None:
    client = make_app(PUBLIC_BASE_URL=PUBLIC).test_client()
    params = room_params()
    query = urlencode(params)
    signature = sign(f"{PUBLIC_URL}?{query}", None)
    response = client.get(f"{CALLBACK_PATH}?{query}", headers={"X-Twilio-Signature": signature})
    assert response.status_code == 204
    assert queued(redis_url)[0]["args"][0]["params"] == params


# The URL follows the request (no PUBLIC_BASE_URL), among these Hosts only.
BY_HOST = {
    "PUBLIC_BASE_URL": None,
    "ALLOWED_HOSTS": "localhost,hooks.example.com:443,hooks.example.com:8443",
}

FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "hooks.example.com",
    "X-Forwarded-For": "203.0.113.9",
}


@pytest.mark.parametrize("trust", [None, "0", "false"])
def test_proxy_headers_are_ignored_unless_trusted(make_app: AppFactory, trust: str | None) -> None:
    client = make_app(TRUST_PROXY_HEADERS=trust, **BY_HOST).test_client()
    forged = post_callback(client, recording_params(), url=PUBLIC_URL, headers=FORWARDED)
    assert_problem(forged, 403)
    # What the app really sees still works, headers or not.
    assert post_callback(client, recording_params(), headers=FORWARDED).status_code == 204


@pytest.mark.parametrize("trust", ["1", "true"])
def test_proxy_headers_are_honoured_when_trusted(make_app: AppFactory, trust: str) -> None:
    app = make_app(TRUST_PROXY_HEADERS=trust, **BY_HOST)
    assert isinstance(app.wsgi_app, ProxyFix)
    client = app.test_client()
    assert (
        post_callback(client, recording_params(), url=PUBLIC_URL, headers=FORWARDED).status_code
        == 204
    )
    assert_problem(post_callback(client, recording_params(), headers=FORWARDED), 403)


def test_a_trusted_forwarded_port_is_part_of_the_url(make_app: AppFactory) -> None:
    client = make_app(TRUST_PROXY_HEADERS="1", **BY_HOST).test_client()
    headers = FORWARDED | {"X-Forwarded-Port": "8443"}
    url = "https://hooks.example.com:8443" + CALLBACK_PATH
    assert post_callback(client, recording_params(), url=url, headers=headers).status_code == 204
    other = "https://hooks.example.com:9443" + CALLBACK_PATH
    assert_problem(post_callback(client, recording_params(), url=other, headers=headers), 403)


def test_public_base_url_wins_over_trusted_proxy_headers(make_app: AppFactory) -> None:
    client = make_app(PUBLIC_BASE_URL=PUBLIC, TRUST_PROXY_HEADERS="1").test_client()
    headers = FORWARDED | {"X-Forwarded-Host": "elsewhere.example.com"}
    assert (
        post_callback(client, recording_params(), url=PUBLIC_URL, headers=headers).status_code
        == 204
    )


def test_the_secondary_token_is_accepted_during_a_rotation(make_app: AppFactory) -> None:
    client = make_app(TWILIO_AUTH_TOKEN_SECONDARY="next-token").test_client()
    assert post_callback(client, recording_params(), token="next-token").status_code == 204
    assert post_callback(client, recording_params()).status_code == 204
    assert_problem(post_callback(client, recording_params(), token="third-token"), 403)


def test_without_a_secondary_token_only_the_primary_is_accepted(make_app: AppFactory) -> None:
    client = make_app().test_client()
    assert_problem(post_callback(client, recording_params(), token="next-token"), 403)
