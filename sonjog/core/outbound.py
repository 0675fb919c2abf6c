"""Addresses the installation may send requests to on an operator's behalf.

Operators configure their own gateway URLs (SMS, WhatsApp). Left unchecked, such a URL lets whoever
may edit a provider account make the server call its own loopback services, the cloud metadata
address or the ISP's internal network. So an operator-configured URL is refused when its host name
resolves to any loopback, private, link-local, shared (CGNAT), multicast, reserved or otherwise
non-global address, unless the installation allows it with SONJOG_ALLOW_PRIVATE_OUTBOUND (tests and
the demo, whose gateways listen on 127.0.0.1; an installation whose gateway is on its own LAN).

The check runs when the account is saved (a form error) and again before every request (the name may
resolve elsewhere by then). Between that check and the connection the resolver is asked once more,
so a name whose owner flips its answer within that instant is not covered.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

ALLOWED_SCHEMES = ("http", "https")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(ValueError):
    """The URL may not be requested from here; the message is fit to show the user."""


class OutboundUnresolved(OutboundRefused):
    """The host name does not resolve (now): at send time a temporary failure, not a refusal."""


def private_outbound_allowed() -> bool:
    return bool(getattr(settings, "SONJOG_ALLOW_PRIVATE_OUTBOUND", False))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64): where it really leads."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public_address(address: IPAddress) -> bool:
    """True only for a globally routable unicast address (and one that embeds no other kind)."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates.extend(_embedded_ipv4(address))
    for candidate in candidates:
        if (
            not candidate.is_global
            or candidate.is_private
            or candidate.is_loopback
            or candidate.is_link_local
            or candidate.is_multicast
            or candidate.is_reserved
            or candidate.is_unspecified
        ):
            return False
    return True


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to now; OutboundUnresolved when it resolves to none."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as error:
        raise OutboundUnresolved(
            _("The host name %(host)s cannot be resolved (%(error)s).") % {"host": host, "error": error}
        ) from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    if not addresses:
        raise OutboundUnresolved(_("The host name %(host)s cannot be resolved.") % {"host": host})
    return addresses


def check_outbound_url(url: str) -> None:
    """Refuse (OutboundRefused) a URL this installation may not request; see the module docstring."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused(_("This is not a usable web address.")) from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise OutboundRefused(_("Only http:// and https:// addresses can be used."))
    host = parts.hostname
    if not host:
        raise OutboundRefused(_("This address names no host."))
    if private_outbound_allowed():
        return
    for address in resolve(host, port or (443 if parts.scheme.lower() == "https" else 80)):
        if not is_public_address(address):
            raise OutboundRefused(
                _(
                    "%(host)s leads to %(address)s, a loopback, private, link-local or reserved address; "
                    "this installation sends only to public addresses (SONJOG_ALLOW_PRIVATE_OUTBOUND)."
                )
                % {"host": host, "address": address}
            )
