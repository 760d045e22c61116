"""Raw-packet capture of the probe's own flows, where the probe holds CAP_NET_RAW.

A capture is opened for one flow at a time, before its first packet is sent: the flow's
four-tuple is known in advance (the probe binds its local port first), and the kernel's BPF
filter is narrowed to it, so packets of any other flow on the volunteer's machine are never
seen, let alone recorded. A capture is bounded in packets and in time, and records only the
fields that tell an injected packet from the server's own (TTL, IP ID, TCP window and flags,
a DNS answer set); never a payload.

scapy is imported only here and only when a capture is first made (it is the ``raw``
extra); without it or without the capability, ``available()`` is False and the probe runs
as it always did, saying in ``missing_evidence`` what it could not collect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any, Final

from probe.model import Packet

MAX_PACKETS: Final = 32
START_TIMEOUT: Final = 1.0
DRAIN_QUIET: Final = 0.005
DRAIN_ROUNDS: Final = 4
NO_CAPABILITY: Final = (
    "raw_packets: no CAP_NET_RAW (or no scapy): packet TTLs, IP IDs and TCP windows of "
    "resets and DNS answers were not recorded"
)
NO_HOP_LOCATION: Final = (
    "censor_hop: no CAP_NET_RAW: TTL-limited probes that locate the censoring hop were not run"
)


@functools.cache
def available() -> bool:
    """Whether this process may capture: scapy is installed and a packet socket opens."""
    try:
        import scapy  # noqa: F401
    except ImportError:
        return False
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)):
            return True
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class Flow:
    """One flow as the kernel filter sees it: protocol, the far end, and our local port."""

    protocol: str  # "tcp" | "udp"
    remote: str
    remote_port: int
    local_port: int

    def bpf(self) -> str:
        remote = str(ipaddress.ip_address(self.remote.split("%")[0]))
        family = "ip6" if ":" in remote else "ip"
        return (
            f"{family} and {self.protocol} and src host {remote} and src port "
            f"{self.remote_port} and dst port {self.local_port}"
        )


@dataclass(frozen=True)
class DNSPacket:
    """A DNS response datagram as captured: its ID, answer data, and IP fields."""

    t: float
    query_id: int
    answers: tuple[str, ...]
    ttl: int
    ip_id: int | None


@dataclass
class Capture:
    """A running, bounded capture of one flow (inbound packets only)."""

    flow: Flow
    clock: Any  # the event loop's time(), so that packet times share the observations' clock
    sniffer: Any = None
    packets: list[tuple[float, Any]] = field(default_factory=list)

    async def start(self) -> bool:
        from scapy.sendrecv import AsyncSniffer

        prepare()  # done already, in a thread, when the engine asked the network to prepare
        loop = asyncio.get_running_loop()
        started = asyncio.Event()  # set from the sniffer's thread once its socket is open
        try:
            self.sniffer = AsyncSniffer(
                iface=interface_towards(self.flow.remote),
                filter=self.flow.bpf(),
                prn=self._keep,
                store=False,
                count=MAX_PACKETS,
                started_callback=lambda: loop.call_soon_threadsafe(started.set),
            )
            self.sniffer.start()
        except Exception:  # a capture that cannot start is missing evidence, not a failure
            return False
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await started.wait()
        except TimeoutError:
            return False
        return True

    def _keep(self, packet: Any) -> None:
        if len(self.packets) < MAX_PACKETS:
            self.packets.append((self.clock(), packet))

    async def stop(self) -> None:
        """Stop listening; the sniffer's thread winds down on its own (its socket closed)."""
        if self.sniffer is None:
            return
        sniffer, self.sniffer = self.sniffer, None
        # Let packets already in the capture socket land: wait until a few ms bring none.
        for _ in range(DRAIN_ROUNDS):
            seen = len(self.packets)
            await asyncio.sleep(DRAIN_QUIET)
            if len(self.packets) == seen:
                break
        with contextlib.suppress(Exception):
            if sniffer.running:
                sniffer.stop(join=False)

    def tcp_packets(self, origin: float) -> list[Packet]:
        facts = [p for p in (tcp_fact(t - origin, pkt) for t, pkt in self.packets) if p]
        return _once(facts)

    def dns_packets(self) -> list[DNSPacket]:
        return [p for p in (dns_fact(t, pkt) for t, pkt in self.packets) if p]


@functools.cache
def prepare() -> None:
    """Import the parts of scapy a capture uses (not ``scapy.all``: a third of the time)
    and read the routing tables, once, before the first flow is timed. Blocking: run it in
    a thread."""
    import scapy.layers.dns
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2
    import scapy.sendrecv  # noqa: F401
    from scapy.config import conf

    conf.verb = 0
    interface_towards("192.0.2.1")


def _once(facts: list[Packet]) -> list[Packet]:
    """Each packet once: on loopback the capture sees it leave and arrive (same IP ID)."""
    kept: list[Packet] = []
    for fact in facts:
        if kept and _same(kept[-1], fact):
            continue
        kept.append(fact)
    return kept


def _same(a: Packet, b: Packet) -> bool:
    return (a.flags, a.ttl, a.ip_id, a.window, a.payload) == (
        b.flags,
        b.ttl,
        b.ip_id,
        b.window,
        b.payload,
    )


@functools.lru_cache(maxsize=256)
def interface_towards(address: str) -> str | None:
    """The interface the kernel routes ``address`` through: the capture listens there."""
    from scapy.config import conf

    try:
        if ":" in address:
            return str(conf.route6.route(address)[0])
        return str(conf.route.route(address)[0])
    except Exception:
        return None


def _ip_fields(packet: Any) -> tuple[int, int | None] | None:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    if packet.haslayer(IP):
        return int(packet[IP].ttl), int(packet[IP].id)
    if packet.haslayer(IPv6):
        return int(packet[IPv6].hlim), None
    return None


def tcp_fact(t: float, packet: Any) -> Packet | None:
    from scapy.layers.inet import TCP

    ip = _ip_fields(packet)
    if ip is None or not packet.haslayer(TCP):
        return None
    tcp = packet[TCP]
    return Packet(
        t=round(max(t, 0.0), 6),
        flags=str(tcp.flags),
        ttl=ip[0],
        ip_id=ip[1],
        window=int(tcp.window),
        payload=len(bytes(tcp.payload)),
    )


def dns_fact(t: float, packet: Any) -> DNSPacket | None:
    from scapy.layers.dns import DNS
    from scapy.layers.inet import UDP

    ip = _ip_fields(packet)
    if ip is None or not packet.haslayer(UDP):
        return None
    try:  # scapy decodes DNS by port 53 only; a resolver on another port is DNS too
        dns = packet[DNS] if packet.haslayer(DNS) else DNS(bytes(packet[UDP].payload))
    except Exception:  # not a DNS message: nothing to record
        return None
    answers: list[str] = []
    for i in range(int(dns.ancount or 0)):
        with contextlib.suppress(Exception):
            record = dns.an[i]
            if record.type in (1, 28):
                answers.append(str(ipaddress.ip_address(record.rdata)))
    return DNSPacket(t, int(dns.id), tuple(sorted(answers)), ip[0], ip[1])
