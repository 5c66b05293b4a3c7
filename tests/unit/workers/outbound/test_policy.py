"""workers.outbound.policy: which schemes and addresses a media download may use (pure logic; DNS
injected), and how MEDIA_ALLOWED_NETWORKS is read."""

from __future__ import annotations

import ipaddress

import pytest

from schemas.settings import ConfigurationError
from tests.unit.workers.helpers import worker_settings
from workers.outbound.policy import DestinationRefused, OutboundPolicy

PUBLIC = OutboundPolicy(frozenset({"https", "http"}))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("fc00::1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("fe80::1%lo", "link-local"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("240.0.0.1", "reserved"),
        ("100.64.0.1", "shared"), ("192.0.2.1", "private"),  # documentation (TEST-NET-1)
        ("::ffff:127.0.0.1", "loopback (as 127.0.0.1)"),
        ("::ffff:169.254.169.254", "link-local (as 169.254.169.254)"),
        ("64:ff9b::a9fe:a9fe", "link-local (as 169.254.169.254)"),  # NAT64
        ("2002:7f00:1::", "loopback (as 127.0.0.1)"),  # 6to4
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    refusal = PUBLIC.refusal(address)

    assert refusal == f"{address} is {reason}, not in MEDIA_ALLOWED_NETWORKS"


@pytest.mark.parametrize("address", ["8.8.8.8", "52.216.0.1", "2606:4700::1111",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808"])  # fmt: skip
def test_public_addresses_are_allowed(address: str) -> None:
    assert PUBLIC.refusal(address) is None


def test_allowed_networks_admit_only_their_addresses() -> None:
    policy = OutboundPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),
                                              ipaddress.ip_network("fd00::/8")))  # fmt: skip

    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("::ffff:127.0.0.1") is None  # the same address, mapped
    assert policy.refusal("fd12::1") is None
    assert policy.refusal("::1") is not None
    assert policy.refusal("10.0.0.1") is not None


@pytest.mark.parametrize(
    ("base", "url", "refused"),
    [
        ("https://video.twilio.com", "https://s3.example.com/m?Signature=x", False),
        ("https://video.twilio.com", "http://s3.example.com/m?Signature=x", True),
        ("http://127.0.0.1:8080", "http://s3.example.com/m?Signature=x", False),
        ("http://127.0.0.1:8080", "ftp://s3.example.com/m", True),
        ("https://video.twilio.com", "file:///etc/passwd", True),
        ("https://video.twilio.com", "/relative/only", True),
    ],
)  # fmt: skip
def test_https_only_unless_twilio_itself_is_reached_over_http(
    base: str, url: str, refused: bool
) -> None:
    policy = OutboundPolicy.for_media(worker_settings(TWILIO_VIDEO_BASE_URL=base))
    policy = OutboundPolicy(policy.schemes, resolver=lambda host, port: ["52.216.0.1"])

    if refused:
        with pytest.raises(DestinationRefused) as caught:
            policy.check_url(url)
        assert "Signature" not in str(caught.value)
    else:
        policy.check_url(url)


def test_every_address_a_name_resolves_to_must_be_allowed() -> None:
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["52.216.0.1", "10.0.0.7"]

    policy = OutboundPolicy(resolver=resolver)

    with pytest.raises(DestinationRefused, match="media.example.com resolves to 10.0.0.7 is"):
        policy.check_url("https://media.example.com/m.mkv?Signature=s3cr3t")
    assert asked == [("media.example.com", 443)]


def test_media_allowed_networks_is_read_as_cidr_networks() -> None:
    settings = worker_settings(MEDIA_ALLOWED_NETWORKS="127.0.0.0/8, ::1/128,10.1.2.3")

    assert settings.media_allowed_networks == (
        ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"),
        ipaddress.ip_network("10.1.2.3/32"),
    )  # fmt: skip
    assert worker_settings(MEDIA_ALLOWED_NETWORKS="").media_allowed_networks == ()


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1/8", "10.0.0.0/33", "1.2.3"])
def test_a_malformed_network_fails_at_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError, match="MEDIA_ALLOWED_NETWORKS"):
        worker_settings(MEDIA_ALLOWED_NETWORKS=value)
