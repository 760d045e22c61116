"""A scripted network for driving the engine without sockets.

Behaviour is looked up per operation; each key holds a list of results consumed one per
call (the last one repeats), so a test can say "fail once, then succeed".
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from probe.measure.engine import Engine, Settings
from probe.measure.network import Exchange, Network, Outcome, Resolution, Resolver
from probe.measure.throughput import Limits
from probe.model import (
    Certificate,
    DNSAnswer,
    DNSObservation,
    DNSResponse,
    HTTPObservation,
    Measurement,
    Role,
    TCPObservation,
    ThroughputObservation,
    TLSObservation,
)
from probe.targets import TargetList

GOOD_CERT = Certificate(
    sha256="ab" * 32,
    subject="CN=service",
    issuer="CN=Trusted CA",
    not_before="2026-01-01T00:00:00Z",
    not_after="2027-01-01T00:00:00Z",
)
ROGUE_CERT = Certificate(
    sha256="cd" * 32,
    subject="CN=service",
    issuer="CN=Rogue Interception CA",
    not_before="2026-01-01T00:00:00Z",
    not_after="2027-01-01T00:00:00Z",
)


@dataclass(frozen=True)
class Answer:
    """A DNS result: addresses, an rcode failure, a timeout, or two responses (injection)."""

    addresses: tuple[str, ...] = ()
    failure: str | None = None
    injected: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Result:
    """An exchange result: which stage failed, how; or a block page."""

    connect: str | None = None
    tls: str | None = None
    http: str | None = None
    blockpage: str | None = None
    certificate: Certificate | None = GOOD_CERT


OK = Result()
Decide = Callable[[str, tuple[object, ...]], object | None]


@dataclass(frozen=True)
class Rate:
    """A scripted transfer: bytes per second, and how much each interval strays from it
    (a policer: 0; congestion: a lot)."""

    bytes_per_second: float
    wander: float = 0.0


@dataclass
class ScriptedNetwork(Network):
    dns: dict[tuple[str, ...], list[Answer]] = field(default_factory=dict)
    """Keyed (role, host) for A, (role, host, "AAAA") for AAAA."""
    exchanges: dict[tuple[str, int, Role], list[Result]] = field(default_factory=dict)
    default_address: Callable[[str], str] = lambda host: "93.184.216.34"
    interfere: Decide | None = None  # last word on every operation, for property tests
    rates: Callable[[Exchange], Rate] = lambda request: Rate(2_000_000)
    calls: defaultdict[tuple[object, ...], int] = field(default_factory=lambda: defaultdict(int))
    now: float = 0.0
    ipv6: bool = False

    def clock(self) -> float:
        self.now += 0.05  # longer than any scripted step, so steps never overlap in time
        return self.now

    def _next(
        self, key: tuple[object, ...], script: list[object] | None, default: object
    ) -> object:
        count = self.calls[key]
        self.calls[key] += 1
        if not script:
            return default
        return script[min(count, len(script) - 1)]

    async def ipv6_connectivity(self) -> bool:
        return self.ipv6

    async def resolve(
        self, resolver: Resolver, hostname: str, role: Role, origin: float, rdtype: str = "A"
    ) -> Resolution:
        if rdtype == "AAAA":
            key: tuple[object, ...] = (role, hostname, "AAAA")
            default = Answer(failure="dns_no_answer")  # most names have no IPv6 address
        else:
            key = (role, hostname)
            default = Answer((self.default_address(hostname),))
        answer = self._next(key, self.dns.get(key), default)  # type: ignore[call-overload]
        if self.interfere is not None:
            answer = self.interfere("dns", key) or answer
        assert isinstance(answer, Answer)
        t0 = self.clock() - origin
        responses: list[DNSResponse] = []
        failure = answer.failure
        if answer.injected is not None:
            responses.append(_response(answer.injected, t0 + 0.001, rdtype))
        if failure is None:
            responses.append(_response(answer.addresses, t0 + 0.02, rdtype))
        elif failure.startswith("dns_") and failure != "dns_no_resolver":
            rcode = {
                "dns_nxdomain_error": "NXDOMAIN",
                "dns_servfail_error": "SERVFAIL",
                "dns_refused_error": "REFUSED",
                "dns_no_answer": "NOERROR",
            }[failure]
            responses.append(DNSResponse(t=t0 + 0.02, rcode=rcode))
        if answer.injected is not None and failure is None:
            failure = None
        obs = DNSObservation(
            hostname=hostname,
            query_type=rdtype,
            resolver=resolver.label,
            role=role,
            t0=t0,
            t=t0 + 0.02,
            failure=failure if not responses or answer.injected is None else None,
            responses=responses,
        )
        return Resolution(obs)

    async def exchange(self, request: Exchange, origin: float) -> Outcome:
        key = (request.ip, request.port, request.role)
        result = self._next(key, self.exchanges.get(key), OK)  # type: ignore[arg-type]
        if self.interfere is not None:
            result = self.interfere("exchange", key) or result
        assert isinstance(result, Result)
        t0 = self.clock() - origin
        tcp = TCPObservation(
            ip=request.ip,
            port=request.port,
            role=request.role,
            t0=t0,
            t=t0 + 0.01,
            failure=result.connect,
        )
        if result.connect is not None:
            return tcp, None, None
        tls = None
        if request.tls:
            verified = result.tls is None
            tls = TLSObservation(
                ip=request.ip,
                port=request.port,
                sni=request.sni,
                role=request.role,
                t0=t0 + 0.01,
                t=t0 + 0.02,
                failure=result.tls,
                tls_version="TLSv1.3" if result.tls is None else None,
                certificate=result.certificate
                if result.tls is None or result.tls.startswith("ssl_")
                else None,
                verified=verified if result.tls is None or result.tls.startswith("ssl_") else None,
            )
            if result.tls is not None and not result.tls.startswith("ssl_"):
                return tcp, tls, None
        page = None
        if request.http_path is not None:
            page = HTTPObservation(
                ip=request.ip,
                port=request.port,
                host=request.http_host or "",
                path=request.http_path,
                role=request.role,
                t0=t0 + 0.02,
                t=t0 + 0.03,
                failure=result.http,
                status=200 if result.http is None else None,
                blockpage=result.blockpage,
                title="Access restricted" if result.blockpage else None,
            )
        return tcp, tls, page

    async def download(
        self, request: Exchange, origin: float, limits: Limits
    ) -> ThroughputObservation:
        rate = self.rates(request)
        t0 = self.clock() - origin
        seconds = min(limits.seconds, limits.bytes / rate.bytes_per_second)
        samples: list[tuple[float, int]] = []
        received = 0.0
        steps = max(int(seconds / 0.25), 1)
        for step in range(1, steps + 1):
            stray = rate.wander * math.sin(step / 3)  # a rate that wanders over seconds
            received += rate.bytes_per_second * 0.25 * (1 + stray)
            samples.append((round(t0 + 0.05 + step * 0.25, 6), int(received)))
        return ThroughputObservation(
            ip=request.ip,
            port=request.port,
            host=request.http_host or "",
            path=request.http_path or "/",
            role=request.role,
            t0=t0,
            t=samples[-1][0],
            bytes=samples[-1][1],
            samples=samples,
        )


def _response(addresses: tuple[str, ...], t: float, rdtype: str = "A") -> DNSResponse:
    return DNSResponse(
        t=t, rcode="NOERROR", answers=[DNSAnswer(rrtype=rdtype, data=a, ttl=300) for a in addresses]
    )


NETWORK_RESOLVER = Resolver("udp", "192.168.1.1", 53, system=True)
CONTROL_RESOLVERS = [Resolver("https", "1.1.1.1", 443, url="https://1.1.1.1/dns-query")]


async def measure(network: ScriptedNetwork, targets: TargetList) -> dict[str, Measurement]:
    """One run of the real engine over a scripted network: each service's measurement."""
    engine = Engine(network, NETWORK_RESOLVER, CONTROL_RESOLVERS, Settings())
    report = await engine.run(targets)
    return {m.service: m for m in report.measurements}


async def how_the_client_ended(reader: asyncio.StreamReader) -> str:
    """For a server in a test: ``eof`` after the client's FIN, ``reset`` after its RST, or
    ``data`` if it sent more."""
    try:
        return "eof" if await reader.read() == b"" else "data"
    except ConnectionResetError:
        return "reset"
