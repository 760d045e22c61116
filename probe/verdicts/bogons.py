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
from typing import Literal

Scope = Literal["unspecified", "loopback", "private", "reserved", "public"]


@functools.lru_cache(maxsize=4096)
def scope(address: str) -> Scope:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "reserved"
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
