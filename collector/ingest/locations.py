"""Censoring hops from a measurement's trace observations, for the ``censor_hops`` table.

Drawn again here from the recorded traces with the probe's own pure rule
(``probe.verdicts.location``), so a probe's stated location is never taken on trust; the
router's network comes from the collector's own IP-to-ASN table, which the probe does not
have. Only hops the rule locates are kept: "not located" says nothing about where.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from probe.model import Measurement, TraceObservation
from probe.verdicts import location

AsnOf = Callable[[str], int | None]


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
