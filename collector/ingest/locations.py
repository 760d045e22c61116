"""Censoring hops from a measurement's trace observations, for the ``censor_hops`` table.

Drawn again here from the recorded traces with the probe's own pure rule
(``probe.verdicts.location``), so a probe's stated location is never taken on trust; the
router's network comes from the collector's own IP-to-ASN table, which the probe does not
have. Only hops the rule locates are kept: "not located" says nothing about where.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from typing import Any, Final

import msgspec

from collector.ingest.validation import Valid
from probe.model import Hop, Measurement, TraceObservation
from probe.verdicts import location

AsnOf = Callable[[str], int | None]

# How near the uploader's own address a router is taken for the volunteer's side: a home
# router that answers time-exceeded from its WAN address names the subscriber, and the
# ISP's gateway in the same /24 (or the home's /48) all but does.
_NEAR_V4: Final = 24
_NEAR_V6: Final = 48


def hop_rows(measurement: Measurement, cc: str, asn: int, asn_of: AsnOf) -> list[dict[str, Any]]:
    traces = [o for o in measurement.observations if isinstance(o, TraceObservation)]
    rows: list[dict[str, Any]] = []
    for index in sorted({t.endpoint for t in traces if t.endpoint is not None}):
        own = [t for t in traces if t.endpoint == index]
        found = location.best([location.locate(t, c) for t, c in location.pairs(own)])
        if found is None or found.hop is None or found.router is None:
            continue
        rows.append(
            {
                "id": measurement.id,
                "endpoint": index,
                "service": measurement.service,
                "cc": cc,
                "asn": asn,
                "hop": found.hop,
                "router_asn": asn_of(found.router),
                "start_time": measurement.start_time,
            }
        )
    return rows


def no_lookup(address: str) -> int | None:
    return None


def uploader_network(address: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The uploader's own neighbourhood (its /24 or /48), or None when its address is
    unknown; held for the request only, never stored."""
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = _NEAR_V4 if ip.version == 4 else _NEAR_V6
    return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)


def withhold_uploader(
    items: Sequence[Valid], near: ipaddress.IPv4Network | ipaddress.IPv6Network | None
) -> list[Valid]:
    """Each item with every trace router near the uploader's own address withheld, as the
    probe withholds its home network's: the probe cannot see the address its router shows
    the world, the collector can. An item it changes is stored re-encoded."""
    if near is None:
        return list(items)
    return [_withheld(item, near) for item in items]


def _withheld(item: Valid, near: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Valid:
    observations = item.measurement.observations
    if not any(isinstance(observation, TraceObservation) for observation in observations):
        return item
    changed = False
    kept: list[Any] = []
    for observation in observations:
        if isinstance(observation, TraceObservation):
            hops = [_hop(hop, near) for hop in observation.hops]
            if hops != observation.hops:
                observation = msgspec.structs.replace(observation, hops=hops)
                changed = True
        kept.append(observation)
    if not changed:
        return item
    measurement = msgspec.structs.replace(item.measurement, observations=kept)
    return dataclasses.replace(item, measurement=measurement, body=msgspec.json.encode(measurement))


def _hop(hop: Hop, near: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Hop:
    if hop.router is None or not _inside(hop.router, near):
        return hop
    return msgspec.structs.replace(hop, router=None, withheld=True)


def _inside(router: str, near: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(router) in near
    except ValueError:
        return False
