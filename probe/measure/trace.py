"""TTL-limited sends of a blocked endpoint's triggering packet, to locate the censor.

For an endpoint judged ``blocked`` the probe opens a TCP connection to the blocked address
(with the ordinary TTL), lowers the socket's IP TTL (IPv6 hop limit) to 1, 2, … and sends
the packet that triggered the censor: a ClientHello naming the service, or an HTTP request
with its Host; and the same with the control name. What comes back (a router's ICMP
time-exceeded, read on a raw ICMP socket and matched to the flow's own ports; data; a
reset; nothing) is recorded per hop; ``probe.verdicts.location`` draws the hop.

Needs CAP_NET_RAW (the ICMP socket). Bounded: at most ``max_hops`` TTLs, a per-hop timeout,
a cap on a trace's total time, and a budget of traces per run and per target
(``TraceBudget``). Router addresses inside the volunteer's own network (private, link-local,
CGNAT, loopback, the probe's own IPv6 prefix) and every hop before the first public one are
withheld before anything is recorded: the hop keeps its number, never its address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from probe.addresses import ip_literal, is_local
from probe.model import Hop, HopResult, Role, TraceObservation

DEFAULT_TTL: Final = 64
ICMP_GRACE: Final = 0.05
OWN_PREFIX6: Final = 48
"""Routers in the probe's own IPv6 /48 are the volunteer's (a home gets a /48–/64)."""
_KINDS4: Final[dict[int, HopResult]] = {11: "time_exceeded", 3: "unreachable"}  # ICMP types
_KINDS6: Final[dict[int, HopResult]] = {3: "time_exceeded", 1: "unreachable"}  # ICMPv6 types
_QUOTED: Final = (socket.IPPROTO_TCP, socket.IPPROTO_UDP)  # the ports sit alike in both


@dataclass(frozen=True)
class TraceLimits:
    max_hops: int = 20
    hop_timeout: float = 1.0
    connect_timeout: float = 3.0
    total_seconds: float = 40.0
    per_run: int = 3
    """Traces in one run of every service: each costs a few dozen connections."""
    per_target_seconds: float = 3600.0
    """One trace per (address, name) in this long, however often it is found blocked."""


@dataclass
class TraceBudget:
    """How many traces may still run: per run, and per target over time (pure; the clock is
    handed in). One budget lives as long as the probe, so rounds share the per-target limit."""

    limits: TraceLimits = field(default_factory=TraceLimits)
    _run_count: int = 0
    _last: dict[tuple[str, int, str], float] = field(default_factory=dict)

    def new_run(self) -> None:
        self._run_count = 0

    def take(self, target: tuple[str, int, str], now: float) -> bool:
        """Spend one trace on ``target`` (address, port, name) if the limits allow it."""
        if self._run_count >= self.limits.per_run:
            return False
        last = self._last.get(target)
        if last is not None and now - last < self.limits.per_target_seconds:
            return False
        self._run_count += 1
        self._last[target] = now
        return True


@dataclass(frozen=True)
class TraceRequest:
    ip: str
    port: int
    protocol: str  # "tls" | "http"
    name: str  # the service's SNI or Host
    control_name: str
    http_path: str = "/"

    def payload(self, role: Role) -> bytes:
        name = self.name if role == "network" else self.control_name
        if self.protocol == "http":
            return http_request(name, self.http_path)
        if self.protocol == "dns":
            return dns_query(name)
        return client_hello(name)


def client_hello(sni: str) -> bytes:
    """The first flight of a TLS handshake naming ``sni``, from the ssl module itself."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def dns_query(name: str) -> bytes:
    """An A query, as the injectors that match names expect."""
    import dns.message

    return bytes(dns.message.make_query(name, "A").to_wire())


def http_request(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


# Privacy -------------------------------------------------------------------------------------
def withhold_home_hops(hops: Sequence[Hop], own_address: str | None) -> list[Hop]:
    """Each hop as it may be recorded: routers inside the home network, and every router
    before the first public one (TTL order), lose their address; their number stays."""
    first_public = min(
        (h.ttl for h in hops if h.router is not None and _public_router(h.router, own_address)),
        default=None,
    )
    kept: list[Hop] = []
    for hop in hops:
        router = hop.router
        if router is not None and (
            first_public is None
            or hop.ttl < first_public
            or not _public_router(router, own_address)
        ):
            router = None
        withheld = hop.withheld or (hop.router is not None and router is None)
        kept.append(Hop(ttl=hop.ttl, result=hop.result, router=router, t=hop.t, withheld=withheld))
    return kept


def _public_router(router: str, own_address: str | None) -> bool:
    if is_local(router):
        return False
    address = ip_literal(router)
    own = ip_literal(own_address) if own_address else None
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and isinstance(own, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network(f"{own}/{OWN_PREFIX6}", strict=False)
        return address not in network
    return address != own


# ICMP ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IcmpError:
    router: str
    result: HopResult  # time_exceeded | unreachable
    local_port: int
    remote: str
    remote_port: int


def parse_icmp4(packet: bytes) -> IcmpError | None:
    """An ICMP error (with its IP header, as a raw IPv4 socket hands it) quoting a TCP
    segment: who sent it, and the quoted flow's ports."""
    if len(packet) < 20:
        return None
    outer = (packet[0] & 0x0F) * 4
    if len(packet) < outer + 8 + 20 or packet[9] != socket.IPPROTO_ICMP:
        return None
    kind = packet[outer]
    result = _kind4(kind)
    quoted = packet[outer + 8 :]
    inner = (quoted[0] & 0x0F) * 4
    if result is None or quoted[9] not in _QUOTED or len(quoted) < inner + 4:
        return None
    sport, dport = struct.unpack("!HH", quoted[inner : inner + 4])
    router = socket.inet_ntop(socket.AF_INET, packet[12:16])
    remote = socket.inet_ntop(socket.AF_INET, quoted[16:20])
    return IcmpError(router, result, sport, remote, dport)


def parse_icmp6(message: bytes, sender: str) -> IcmpError | None:
    """An ICMPv6 error as a raw ICMPv6 socket hands it (no IPv6 header; ``sender`` from
    recvfrom) quoting a TCP segment right after the quoted IPv6 header."""
    if len(message) < 8 + 40 + 4:
        return None
    result = _kind6(message[0])
    quoted = message[8:]
    if result is None or quoted[6] not in _QUOTED:
        return None
    sport, dport = struct.unpack("!HH", quoted[40:44])
    remote = socket.inet_ntop(socket.AF_INET6, quoted[24:40])
    return IcmpError(sender.split("%")[0], result, sport, remote, dport)


def _kind4(kind: int) -> HopResult | None:
    return _KINDS4.get(kind)


def _kind6(kind: int) -> HopResult | None:
    return _KINDS6.get(kind)


class IcmpListener:
    """A raw ICMP socket for one trace: errors quoting this trace's flows are handed to the
    hop waiting for them by local port; anything else is read and dropped unrecorded."""

    def __init__(self, family: socket.AddressFamily) -> None:
        proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
        self.family = family
        self.sock = socket.socket(family, socket.SOCK_RAW, proto)
        self.sock.setblocking(False)
        self.waiting: dict[int, tuple[str, int, asyncio.Future[IcmpError]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, sender = await loop.sock_recvfrom(self.sock, 2048)
            if self.family == socket.AF_INET6:
                error = parse_icmp6(data, str(sender[0]))
            else:
                error = parse_icmp4(data)
            if error is None:
                continue
            waiting = self.waiting.get(error.local_port)
            if waiting is None:
                continue
            remote, port, future = waiting
            same = ipaddress.ip_address(remote) == ipaddress.ip_address(error.remote)
            if same and port == error.remote_port and not future.done():
                future.set_result(error)

    def expect(self, local_port: int, remote: str, port: int) -> asyncio.Future[IcmpError]:
        future: asyncio.Future[IcmpError] = asyncio.get_running_loop().create_future()
        self.waiting[local_port] = (remote, port, future)
        return future

    def forget(self, local_port: int) -> None:
        self.waiting.pop(local_port, None)

    async def close(self) -> None:
        try:
            if self._task is not None:
                await _reap(self._task)
        finally:
            self.sock.close()


# Sending -------------------------------------------------------------------------------------
Clock = Callable[[], float]


class Sender(Protocol):
    """Sends one TTL-limited packet of a trace and says what came back."""

    own_address: str | None

    async def __call__(self, role: Role, ttl: int) -> Hop: ...


async def trace(
    request: TraceRequest, origin: float, limits: TraceLimits, clock: Clock
) -> tuple[TraceObservation, TraceObservation]:
    """The service name's trace and the control name's, over real sockets."""
    family = socket.AF_INET6 if ":" in request.ip else socket.AF_INET
    listener = IcmpListener(family)
    listener.start()
    try:
        return await walk(request, _SocketSender(request, listener, limits), limits, clock, origin)
    finally:
        await listener.close()


async def walk(
    request: TraceRequest, send: Sender, limits: TraceLimits, clock: Clock, origin: float
) -> tuple[TraceObservation, TraceObservation]:
    """TTL by TTL, the control name first (so that a censor punishing an address after a
    forbidden name cannot taint it), until the control name reaches the server, the hop
    limit or the time cap; then the home network's hops are withheld."""
    started = clock()
    deadline = time.monotonic() + limits.total_seconds
    hops: dict[Role, list[Hop]] = {"network": [], "control": []}
    for ttl in range(1, limits.max_hops + 1):
        for role in ("control", "network"):
            hop = await send(role, ttl)
            if _resend(role, hop, hops["control"]) and time.monotonic() < deadline:
                hop = await send(role, ttl)
            hops[role].append(hop)
        if _done(hops["network"][-1], hops["control"][-1]) or time.monotonic() > deadline:
            break
    ended = clock()
    return (
        _observation(request, "network", hops["network"], send.own_address, started, ended, origin),
        _observation(request, "control", hops["control"], send.own_address, started, ended, origin),
    )


def _resend(role: Role, hop: Hop, control: list[Hop]) -> bool:
    """A silent hop is sent once more (a lost packet, a router's ICMP rate limit), the
    service name's only where the control name's was not silent at that TTL."""
    if hop.result != "silence":
        return False
    return role == "control" or (bool(control) and control[-1].result != "silence")


def _done(test: Hop, control: Hop) -> bool:
    """The control name reached the server: farther TTLs only reach it again."""
    return control.result in ("answer", "reset", "eof") or test.result == control.result == "answer"


def _observation(
    request: TraceRequest,
    role: Role,
    hops: list[Hop],
    own_address: str | None,
    started: float,
    ended: float,
    origin: float,
) -> TraceObservation:
    return TraceObservation(
        ip=request.ip,
        port=request.port,
        name=request.name if role == "network" else request.control_name,
        protocol="http"
        if request.protocol == "http"
        else "dns"
        if request.protocol == "dns"
        else "tls",
        role=role,
        t0=round(max(started - origin, 0.0), 6),
        t=round(max(ended - origin, 0.0), 6),
        hops=withhold_home_hops(hops, own_address),
    )


class _SocketSender:
    def __init__(self, request: TraceRequest, listener: IcmpListener, limits: TraceLimits):
        self.request = request
        self.listener = listener
        self.limits = limits
        self.own_address: str | None = None

    async def __call__(self, role: Role, ttl: int) -> Hop:
        request, listener = self.request, self.listener
        loop = asyncio.get_running_loop()
        kind = socket.SOCK_DGRAM if request.protocol == "dns" else socket.SOCK_STREAM
        sock = socket.socket(listener.family, kind)
        sock.setblocking(False)
        started = time.monotonic()
        try:
            try:
                async with asyncio.timeout(self.limits.connect_timeout):
                    await loop.sock_connect(sock, (request.ip, request.port))
            except (OSError, TimeoutError):
                return Hop(ttl=ttl, result="connect_failed")
            local = sock.getsockname()
            self.own_address = self.own_address or str(local[0])
            local_port = int(local[1])
            icmp = listener.expect(local_port, request.ip, request.port)
            _set_ttl(sock, listener.family, ttl)
            sock.send(request.payload(role))
            result, router = await _outcome(sock, icmp, self.limits.hop_timeout)
            listener.forget(local_port)
            took = round(time.monotonic() - started, 6)
            return Hop(ttl=ttl, result=result, router=router, t=took)
        finally:
            with contextlib.suppress(OSError):
                _set_ttl(sock, listener.family, DEFAULT_TTL)
                if kind == socket.SOCK_STREAM:  # a reset, not a lingering close
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


async def _outcome(
    sock: socket.socket, icmp: asyncio.Future[IcmpError], wait: float
) -> tuple[HopResult, str | None]:
    received: asyncio.Future[HopResult] = asyncio.ensure_future(_receive(sock))
    pending: set[asyncio.Future[HopResult] | asyncio.Future[IcmpError]] = {received, icmp}
    try:
        done, _ = await asyncio.wait(pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        if icmp in done and received not in done:
            # An on-path device's reset or forged answer may trail the next router's ICMP.
            await asyncio.wait({received}, timeout=ICMP_GRACE)
        elif received in done and icmp not in done:
            await asyncio.wait({icmp}, timeout=ICMP_GRACE)  # and the ICMP may trail it
        router = icmp.result().router if icmp.done() else None
        if received.done():
            return received.result(), router
        if icmp.done():
            return icmp.result().result, router
        return "silence", None
    finally:
        await _reap(received)


async def _reap(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait for it to end. Awaiting it would raise its CancelledError,
    which cannot be told from a cancellation of the caller: a stop arriving then is lost."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # ended on its own, perhaps failing: nobody is waiting for it now


async def _receive(sock: socket.socket) -> HopResult:
    try:
        data = await asyncio.get_running_loop().sock_recv(sock, 4096)
    except ConnectionResetError:
        return "reset"
    except OSError:  # ECONNREFUSED on UDP: a port unreachable
        return "unreachable"
    return "answer" if data else "eof"


def _set_ttl(sock: socket.socket, family: socket.AddressFamily, ttl: int) -> None:
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
