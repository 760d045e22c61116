"""Addresses no public service resolves to: a resolver answering with one is lying."""

from __future__ import annotations

import ipaddress


def is_bogon(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    return not ip.is_global or ip.is_multicast
