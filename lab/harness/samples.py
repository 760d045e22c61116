"""Realistic measurements for collector tests, built with the probe's own wire model."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from probe import model
from probe.model import Verdict

_FAILURES = {
    "blocked": "connection_reset",
    "anomaly": "generic_timeout_error",
    "down": "connection_refused",
}


def _dns(host: str, role: model.Role, resolver: str, t0: float) -> model.DNSObservation:
    answers = [
        model.DNSAnswer(rrtype="A", data="149.154.167.99", ttl=300),
        model.DNSAnswer(rrtype="A", data="149.154.167.98", ttl=300),
    ]
    return model.DNSObservation(
        hostname=host, query_type="A", resolver=resolver, role=role, t0=t0, t=t0 + 0.021,
        responses=[model.DNSResponse(t=t0 + 0.021, rcode="NOERROR", answers=answers)],
    )  # fmt: skip


def _tls(host: str, role: model.Role, failure: str | None, t0: float) -> model.TLSObservation:
    certificate = model.Certificate(
        sha256="9f" * 32, subject=f"CN={host}", issuer="CN=Go Daddy Secure Certificate Authority - G2",
        not_before="2024-01-01T00:00:00Z", not_after="2025-01-01T00:00:00Z", san=[host, f"*.{host}"],
    )  # fmt: skip
    ok = failure is None
    return model.TLSObservation(
        ip="149.154.167.99", port=443, sni=host if role == "network" else "example.com", role=role,
        t0=t0, t=t0 + 0.08, failure=failure, tls_version="TLSv1.3" if ok else None,
        certificate=certificate if ok else None, verified=ok if ok else None,
    )  # fmt: skip


def measurement(
    *,
    service: str = "telegram",
    verdict: Verdict = "ok",
    methods: list[model.Method] | None = None,
    cc: str | None = "KZ",
    asn: int | None = 9198,
    start: dt.datetime | None = None,
    probe_id: str | None = None,
    measurement_id: uuid.UUID | None = None,
    attestation: str | None = None,
) -> model.Measurement:
    """About 2 KB of JSON: DNS (network and control), TCP and TLS (SNI and control SNI)."""
    host = f"web.{service}.org"
    failure = _FAILURES.get(verdict)
    if methods is None:
        methods = (
            ["tls.reset"]
            if verdict == "blocked"
            else ["tls.timeout"]
            if verdict == "anomaly"
            else []
        )
    observations: list[model.Observation] = [
        _dns(host, "network", "system", 0.001),
        _dns(host, "control", "https://dns.example/dns-query", 0.002),
        model.TCPObservation(ip="149.154.167.99", port=443, t0=0.03, t=0.071),
        _tls(host, "network", failure, 0.08),
        _tls(host, "control", None, 0.2),
    ]
    endpoint = model.Endpoint(port=443, host=host)
    rules = [f"tls.{verdict}.v1"]
    return model.Measurement(
        id=measurement_id or uuid.uuid4(),
        format_version=model.FORMAT_VERSION,
        software=model.Software(name="censorwatch-probe", version="0.1.0"),
        probe=model.ProbeInfo(
            id=probe_id, asn=asn, cc=cc, network_resolver_asn=asn, attestation=attestation
        ),
        service=service,
        category="messenger",
        start_time=start or dt.datetime.now(dt.UTC).replace(microsecond=123000),
        runtime=0.42,
        endpoints=[endpoint],
        observations=observations,
        analysis=model.Analysis(
            verdict=verdict,
            methods=methods,
            confidence=0.9 if verdict != "ok" else 1.0,
            rules=rules,
            rules_version="1",
            endpoints=[
                model.EndpointAnalysis(
                    endpoint=endpoint.label,
                    verdict=verdict,
                    methods=methods,
                    confidence=0.9,
                    rules=rules,
                )
            ],
            evidence=[f"{host}: {failure}"] if failure else [],
        ),
    )


def traced(
    sample: model.Measurement, hop: int, routers: tuple[str, ...], ended: model.HopResult = "reset"
) -> model.Measurement:
    """The measurement with the TTL-limited traces of its first endpoint: both names pass
    ``routers`` one per hop; one hop after ``hop`` the service's name ends while the
    control name goes on (the next router, or the server)."""

    def trace(role: model.Role) -> model.TraceObservation:
        hops = []
        for ttl in range(1, hop + 2):
            if ttl <= hop:
                hops.append(model.Hop(ttl=ttl, result="time_exceeded", router=routers[ttl - 1]))
            elif role == "network":
                hops.append(model.Hop(ttl=ttl, result=ended))
            elif ttl <= len(routers):
                hops.append(model.Hop(ttl=ttl, result="time_exceeded", router=routers[ttl - 1]))
            else:
                hops.append(model.Hop(ttl=ttl, result="answer"))
        name = sample.endpoints[0].host or "" if role == "network" else "example.com"
        return model.TraceObservation(
            ip="149.154.167.99", port=443, name=name, protocol="tls", role=role,
            t0=0.5, t=0.9, hops=hops, endpoint=0,
        )  # fmt: skip

    observations = [*sample.observations, trace("network"), trace("control")]
    return msgspec.structs.replace(sample, observations=observations)
