"""The address a request came from, behind TLS-terminating proxies the operator trusts.

Behind a proxy every probe looks like the proxy, and its ASN lookup says nothing. The
``Forwarded`` (RFC 7239) and ``X-Forwarded-For`` headers name the real peer, but anyone
can send them: they are read only when the connection itself comes from a configured
trusted proxy, and then from the right, skipping further trusted proxies, so the first
address that is not one of ours is the one the nearest trusted proxy saw. A client
prepending made-up entries only adds them to the left, where they are never reached.
The address goes no further than the ASN lookup.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Final

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FOR: Final = re.compile(r'(?:^|[;,\s])for="?([^";,]+)"?', re.IGNORECASE)


def parse_networks(text: str) -> tuple[Network, ...]:
    """``10.0.0.0/8, 2001:db8::/32, 192.0.2.7``: a comma-separated list of networks."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return tuple(ipaddress.ip_network(p, strict=False) for p in parts)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = text.strip()
    if host.startswith("["):  # [v6] or [v6]:port
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:  # v4:port
        host = host.split(":")[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[Network]
) -> bool:
    return any(address.version == n.version and address in n for n in proxies)


def forwarded_chain(forwarded: str | None, x_forwarded_for: str | None) -> list[str]:
    """The hops the headers name, nearest last; ``Forwarded`` wins when both are there."""
    if forwarded:
        return _FOR.findall(forwarded)
    if x_forwarded_for:
        return [part.strip() for part in x_forwarded_for.split(",")]
    return []


def client_address(
    remote: str | None,
    forwarded: str | None,
    x_forwarded_for: str | None,
    proxies: Sequence[Network],
) -> str | None:
    """The peer's address: ``remote``, unless that is a trusted proxy that says otherwise."""
    peer = _address(remote) if remote else None
    if peer is None or not proxies or not _trusted(peer, proxies):
        return remote
    for hop in reversed(forwarded_chain(forwarded, x_forwarded_for)):
        address = _address(hop)
        if address is None:
            return None  # "unknown" or garbage from a proxy we trust: no lookup at all
        if not _trusted(address, proxies):
            return str(address)
    return str(peer)
