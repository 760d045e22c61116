"""Addresses no public service resolves to: a resolver answering with one is lying.

Whether an answer is a bogon is judged against the trusted resolver's answer for the same
name: a private address where the control resolver gives a public one is a fingerprint of
blocking, while a name that is private everywhere (an internal deployment, a lab on
loopback) is not. The unspecified address is never a real answer.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from typing import Final, Literal

Scope = Literal["unspecified", "loopback", "private", "reserved", "public"]


NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4): a resolver can hide a
    private IPv4 answer inside an AAAA record that looks global."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return None


@functools.lru_cache(maxsize=4096)
def scope(address: str) -> Scope:
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address)
    except ValueError:
        return "reserved"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None and ip.ipv4_mapped is None and not inner.is_global:
            return "private" if inner.is_private else "reserved"
        ip = inner if ip.ipv4_mapped is not None and inner is not None else ip
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_global and not ip.is_multicast:
        return "public"
    if ip.is_private or ip.is_link_local:
        return "private"
    return "reserved"


def is_bogon_answer(address: str, control: Iterable[str]) -> bool:
    """A bogon, in a scope the control resolver's answer for the same name is not in."""
    kind = scope(address)
    if kind == "unspecified":
        return True
    trusted = {scope(a) for a in control}
    if not trusted:
        return kind != "public"
    return kind != "public" and kind not in trusted
