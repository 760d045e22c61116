"""Which blocked endpoints to trace, and the analysis with their censoring hops (pure).

Only an endpoint judged ``blocked`` by a method keyed on the name it sends (the SNI in a
ClientHello, the Host of a plain HTTP request, the name in a DNS query answered by an
injector) is traced: there the control name to the same address is the contrast the trace
needs. Address blocks have no such contrast and are not traced. DNS is traced only towards a
listed public resolver: any other resolver's address is never recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import msgspec

from probe.measure import public_resolvers
from probe.measure.trace import TraceRequest
from probe.model import (
    Analysis,
    HopLocation,
    HTTPObservation,
    Observation,
    TLSObservation,
    TraceObservation,
)
from probe.targets import Service
from probe.verdicts import location

TLS_METHODS: Final = frozenset({"tls.reset", "tls.eof", "tls.timeout"})
HTTP_METHODS: Final = frozenset({"http.reset", "http.blockpage"})
DNS_METHODS: Final = frozenset({"dns.injection"})


def trace_requests(
    service: Service,
    observations: Sequence[Observation],
    analysis: Analysis,
    resolver: tuple[str, int] | None = None,
) -> list[tuple[int, TraceRequest]]:
    """(endpoint index, what to send) for each traceable blocked endpoint; ``resolver`` is
    the network's plain-DNS resolver (address, port)."""
    if service.is_control:
        return []
    found: list[tuple[int, TraceRequest]] = []
    for index, (target, result) in enumerate(
        zip(service.endpoints, analysis.endpoints, strict=False)
    ):
        if result.verdict != "blocked":
            continue
        methods = set(result.methods)
        if methods & DNS_METHODS and target.host and _public(resolver):
            assert resolver is not None
            request = TraceRequest(resolver[0], resolver[1], "dns", target.host, target.control_sni)
            found.append((index, request))
        elif target.tls and methods & TLS_METHODS and target.server_name:
            ip = _failed_address(observations, index, TLSObservation)
            if ip is not None:
                found.append(
                    (
                        index,
                        TraceRequest(
                            ip, target.port, "tls", target.server_name, target.control_sni
                        ),
                    )
                )
        elif not target.tls and methods & HTTP_METHODS:
            ip = _failed_address(observations, index, HTTPObservation)
            host = target.host or target.sni
            if ip is not None and host:
                request = TraceRequest(
                    ip, target.port, "http", host, target.control_sni, target.http_path or "/"
                )
                found.append((index, request))
    return found


def _public(resolver: tuple[str, int] | None) -> bool:
    """A listed public resolver on IPv4. (Re-judging reads every observation by the family
    of its address: a trace to an IPv6 resolver would give an endpoint judged over IPv4 an
    IPv6 side it never had.)"""
    if resolver is None or ":" in resolver[0]:
        return False
    return public_resolvers.listed(resolver[0]) is not None


def _failed_address(
    observations: Sequence[Observation],
    index: int,
    kind: type[TLSObservation] | type[HTTPObservation],
) -> str | None:
    for obs in observations:
        if not isinstance(obs, kind) or obs.endpoint != index or obs.role != "network":
            continue
        if obs.failure is not None or getattr(obs, "blockpage", None) is not None:
            return obs.ip
    return None


def located(analysis: Analysis, traces: Sequence[TraceObservation]) -> Analysis:
    """The analysis with each traced endpoint's ``location``; verdicts are unchanged."""
    endpoints = list(analysis.endpoints)
    for index, result in enumerate(endpoints):
        own = [t for t in traces if t.endpoint == index]
        found = location.best([location.locate(t, c) for t, c in location.pairs(own)])
        if found is not None:
            endpoints[index] = msgspec.structs.replace(result, location=found)
    return msgspec.structs.replace(analysis, endpoints=endpoints)


def location_of(analysis: Analysis) -> list[HopLocation]:
    return [e.location for e in analysis.endpoints if e.location is not None]
