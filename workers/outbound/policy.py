"""Where the workers' media downloads may go: the outbound address policy.

The signed URL behind Twilio's ``…/Media`` (and every redirect after it) names a host the
worker then connects to. A redirect to ``http://127.0.0.1/…``, ``169.254.169.254`` or a host
whose name resolves there must not be followed (server-side request forgery), so every hop is
checked here, twice:

- before the request, by :meth:`OutboundPolicy.check_url`: its scheme, and every address its
  host resolves to (a clear refusal before any connection is made);
- at connect time, by :meth:`OutboundPolicy.check_peer` on the address the socket actually
  connected to (:mod:`workers.outbound.http`), so a name that resolves elsewhere the second
  time (DNS rebinding) is refused too.

Refused: every address that is not globally routable (loopback, private, link-local, shared,
multicast, reserved, unspecified, documentation ...), IPv4 ones also when embedded in IPv6
(``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``), unless it is in one of
``MEDIA_ALLOWED_NETWORKS``. Only ``https`` is followed, and plain ``http`` only when
``TWILIO_VIDEO_BASE_URL`` is itself ``http`` (an emulator). Pure logic apart from DNS, which
is injectable.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from schemas.settings import WorkerSettings
from workers.observability.redaction import redact

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: not private, not global


class DestinationRefused(Exception):
    """A URL or connection the policy does not allow; the message has no query string.

    Deliberately not an ``OSError``: urllib3 and requests would wrap one raised while
    connecting into a (transient) connection error; this one reaches the caller as it is."""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination (``"loopback"``, ``"private"`` ...), or None."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = classify(embedded)
        return None if reason is None else f"{reason} (as {embedded})"
    for reason, flagged in (
        ("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local), ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved), ("private", ip.is_private),
        ("shared", ip in _SHARED),
    ):  # fmt: skip
        if flagged:
            return reason
    return None if ip.is_global else "not globally routable"


@dataclass(frozen=True)
class OutboundPolicy:
    """The schemes and addresses a media download may use."""

    schemes: frozenset[str] = frozenset({"https"})
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=resolve, compare=False)

    @classmethod
    def for_media(cls, settings: WorkerSettings) -> OutboundPolicy:
        """HTTPS only (HTTP too when Twilio itself is reached over HTTP), public addresses
        plus ``MEDIA_ALLOWED_NETWORKS``."""
        plain = urlsplit(settings.twilio_video_base_url).scheme.lower() == "http"
        schemes = frozenset({"https", "http"} if plain else {"https"})
        return cls(schemes=schemes, allowed_networks=tuple(settings.media_allowed_networks))

    def refusal(self, address: str) -> str | None:
        """Why the policy refuses ``address`` (an IP literal), or None when it allows it."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return "not an IP address"
        plain = ipaddress.ip_address(str(ip).partition("%")[0])  # no IPv6 zone index
        embedded = _embedded_ipv4(plain)
        if any(net.version == candidate.version and candidate in net
               for net in self.allowed_networks
               for candidate in (plain, embedded) if candidate is not None):  # fmt: skip
            return None
        reason = classify(plain)
        return None if reason is None else f"{address} is {reason}, not in MEDIA_ALLOWED_NETWORKS"

    def check_url(self, url: str) -> None:
        """Raise :class:`DestinationRefused` unless ``url``'s scheme is allowed and every
        address its host resolves to is (an unresolvable host is left to the connection)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            allowed = " or ".join(sorted(self.schemes))
            raise DestinationRefused(f"{redact(url)}: scheme {scheme or '-'!r} is not {allowed}")
        host = parts.hostname
        if not host:
            raise DestinationRefused(f"{redact(url)}: no host")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise DestinationRefused(f"{redact(url)}: invalid port") from None
        try:
            ipaddress.ip_address(host)
            addresses: Sequence[str] = [host]
        except ValueError:
            try:
                addresses = self.resolver(host, port)
            except (OSError, UnicodeError):
                return  # the connection fails the same way and reports it
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                via = f"{host} resolves to " if address != host else ""
                raise DestinationRefused(f"{redact(url)}: {via}{reason}")

    def check_peer(self, address: str, host: str) -> None:
        """Raise :class:`DestinationRefused` unless the address a socket connected to for
        ``host`` is allowed."""
        reason = self.refusal(address)
        if reason is not None:
            raise DestinationRefused(f"connection to {host} refused: {reason}")
