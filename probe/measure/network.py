"""The one seam between the probe and the network.

The engine asks a ``Network`` for steps (resolve, connect, handshake, fetch) and gets back
observations: facts, with failures as strings. ``probe.measure.sockets.SocketNetwork`` does real
I/O; tests hand the engine a scripted subclass, and the lab runs the real one inside a
censored namespace. Nothing else in the probe opens a socket.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

from probe.measure import public_resolvers
from probe.measure.throughput import Limits
from probe.measure.trace import TraceRequest
from probe.model import (
    DNSObservation,
    HTTPObservation,
    Role,
    TCPObservation,
    ThroughputObservation,
    TLSObservation,
    TraceObservation,
)

Transport = Literal["udp", "tcp", "tls", "https"]


class ResolverSpecError(ValueError):
    """A resolver given on the command line that cannot be used."""


@dataclass(frozen=True)
class Resolver:
    """Where to send DNS queries. ``address`` says exactly where, for this machine's eyes
    only; ``label`` is how observations name it (``probe.measure.public_resolvers``)."""

    transport: Transport
    host: str
    port: int
    url: str | None = None
    system: bool = False

    @property
    def address(self) -> str:
        if self.url:
            return self.url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"

    @property
    def label(self) -> str:
        """The address of a listed public resolver; the class of any other."""
        if public_resolvers.listed(self.host) is None:
            return (
                public_resolvers.SYSTEM
                if self.system
                else public_resolvers.address_class(self.host)
            )
        if self.url is None:
            return self.address
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == 443 else f":{self.port}"
        return f"https://{host}{port}{public_resolvers.doh_path(self.url)}"

    @property
    def asn(self) -> int | None:
        """The network of a listed public resolver (the only kind whose network is known)."""
        found = public_resolvers.listed(self.host)
        return None if found is None else found.asn


_DEFAULT_PORTS: dict[str, int] = {"udp": 53, "tcp": 53, "tls": 853, "https": 443}


def parse_resolver(text: str) -> Resolver:
    """``IP[:PORT]``, ``udp://IP[:PORT]``, ``tcp://…``, ``tls://HOST[:PORT]``, ``https://HOST/path``."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "udp", text
    if scheme not in _DEFAULT_PORTS:
        raise ResolverSpecError(f"{text!r}: unknown scheme {scheme!r} (use udp, tcp, tls or https)")
    if scheme == "https":
        match = re.match(r"^(\[[^\]]+\]|[^/:]+)(?::(\d+))?(/.*)?$", rest)
        if not match:
            raise ResolverSpecError(f"{text!r}: not a DoH URL (https://HOST[:PORT]/PATH)")
        host = match.group(1).strip("[]")
        port = _port(text, match.group(2), 443)
        return Resolver(
            "https",
            host,
            port,
            url=f"https://{rest}" if match.group(3) else f"https://{rest}/dns-query",
        )
    host, port_text = _split_host_port(text, rest)
    if scheme in ("udp", "tcp"):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ResolverSpecError(
                f"{text!r}: a {scheme} resolver must be an IP address"
            ) from None
    return Resolver(scheme, host, _port(text, port_text, _DEFAULT_PORTS[scheme]))  # type: ignore[arg-type]


def parse_network_resolver(text: str) -> Resolver:
    """The network's own resolver: plain DNS, ``IP[:PORT]``, ``udp://…`` or ``tcp://…``.

    Encrypted transports are for control resolvers: a network's resolver reached over DoH
    or DoT would not see what the network does to plain DNS, which is what is measured.
    """
    resolver = parse_resolver(text)
    if resolver.transport not in ("udp", "tcp"):
        raise ResolverSpecError(
            f"{text!r}: the network's resolver is plain DNS: IP[:PORT], udp://IP[:PORT] or "
            "tcp://IP[:PORT]"
        )
    return resolver


def _split_host_port(text: str, rest: str) -> tuple[str, str | None]:
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        return host, tail[1:] if tail.startswith(":") else None
    if rest.count(":") > 1:
        return rest, None  # a bare IPv6 address
    host, _, port = rest.partition(":")
    if not host:
        raise ResolverSpecError(f"{text!r}: missing host")
    return host, port or None


def _port(text: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        raise ResolverSpecError(f"{text!r}: port must be 1-65535")
    return int(value)


@dataclass(frozen=True)
class Resolution:
    """A DNS query's outcome. ``first`` is ready at once; ``settled`` adds responses that
    arrived later in the listening window (an injected answer and the real one)."""

    first: DNSObservation
    late: Awaitable[DNSObservation] | None = None

    async def settled(self) -> DNSObservation:
        return self.first if self.late is None else await self.late


@dataclass(frozen=True)
class Exchange:
    """One connection's worth of work: connect, optionally handshake, optionally GET.

    With ``tls`` the handshake sends ``sni``; the ``network`` role verifies chain and name
    as a client would, the ``control`` role (an innocuous SNI) verifies the chain only.
    """

    ip: str
    port: int
    role: Role = "network"
    tls: bool = False
    sni: str | None = None
    http_host: str | None = None
    http_path: str | None = None
    blockpage_hints: tuple[str, ...] = ()


Outcome = tuple[TCPObservation, TLSObservation | None, HTTPObservation | None]


class Network(abc.ABC):
    """Network operations as the engine sees them. Times are seconds since ``origin``
    (a value of the event loop's clock taken at the measurement's start)."""

    @abc.abstractmethod
    async def resolve(
        self, resolver: Resolver, hostname: str, role: Role, origin: float, rdtype: str = "A"
    ) -> Resolution:
        """Ask for ``rdtype`` records (``A`` or ``AAAA``)."""

    @abc.abstractmethod
    async def exchange(self, request: Exchange, origin: float) -> Outcome:
        """Observations of each step reached; later steps are None when an earlier one failed."""

    async def download(
        self, request: Exchange, origin: float, limits: Limits
    ) -> ThroughputObservation:
        """Connect, handshake and GET ``request.http_path``, counting the bytes over time."""
        raise NotImplementedError(f"{type(self).__name__} does not measure throughput")

    async def ipv6_connectivity(self) -> bool:
        """Whether this network routes IPv6 at all; without it IPv6 addresses go untested."""
        return False

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Load what the network needs before the first step is timed (once)."""

    def raw_packets(self) -> bool:
        """Whether exchanges and DNS queries come with their captured packets."""
        return False

    def can_trace(self) -> bool:
        """Whether ``trace`` works here (it needs CAP_NET_RAW for the ICMP answers)."""
        return False

    async def trace(
        self, request: TraceRequest, origin: float
    ) -> tuple[TraceObservation, TraceObservation]:
        """The triggering packet sent with TTL 1, 2, …: the service name's trace and the
        control name's (``probe.measure.trace``)."""
        raise NotImplementedError(f"{type(self).__name__} does not trace")

    def clock(self) -> float:
        """The clock ``origin`` and observation times are taken from."""
        return asyncio.get_running_loop().time()

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions held between steps."""
