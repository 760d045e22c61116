"""Which hosts are the volunteer's own: this machine, its LAN, its provider's private space.

One answer for every place that must not name or reach them: resolvers recorded only by
class (``probe.measure.public_resolvers``), target lists pushed at check-in
(``probe.targets``), and the plain-HTTP exception for a collector on loopback
(``probe.daemon.transport``). Pure; a host name is never resolved here.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_literal(host: str) -> Address | None:
    """The address a host spells (brackets, an IPv6 scope and IPv4-mapped IPv6 undone)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_localhost_name(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")  # RFC 6761


def is_local(host: str) -> bool:
    """A ``localhost`` name, or an address no public service lives at: private, loopback,
    link-local, CGNAT, ULA, unspecified, reserved, multicast."""
    if is_localhost_name(host):
        return True
    address = ip_literal(host)
    return address is not None and (not address.is_global or address.is_multicast)


def is_loopback(host: str) -> bool:
    address = ip_literal(host)
    return is_localhost_name(host) or (address is not None and address.is_loopback)
