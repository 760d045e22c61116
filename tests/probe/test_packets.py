"""Packet evidence: the pure TTL rules, and the capture of exactly one flow on loopback."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from probe import vocabulary
from probe.measure import raw
from probe.measure.network import Exchange
from probe.measure.sockets import SocketNetwork
from probe.model import (
    DNSAnswer,
    DNSObservation,
    DNSResponse,
    Packet,
    TCPObservation,
    TLSObservation,
)
from probe.targets import parse
from probe.verdicts import analysis, packets

SYN_ACK = Packet(t=0.01, flags="SA", ttl=57, window=65160, ip_id=0)
SERVER_RST = Packet(t=0.02, flags="R", ttl=57, window=0, ip_id=0)
NEAR_RST = Packet(t=0.02, flags="R", ttl=59, window=0, ip_id=0)  # a route change, 2 hops
FORGED_RST = Packet(t=0.02, flags="RA", ttl=200, window=0, ip_id=4321)
TARGET = parse(
    """
[[services]]
name = "telegram"
category = "messenger"
[[services.endpoints]]
host = "web.telegram.org"
port = 443
""",
    "packet targets",
).services[0]
IP = "149.154.167.99"


def reset_run(*flows: list[Packet]) -> list[object]:
    """DNS, then every handshake to the address reset after the ClientHello, the control
    SNI's too: no contrast confirms it."""
    dns = [
        DNSObservation(
            hostname="web.telegram.org",
            query_type="A",
            resolver=resolver,
            role=role,  # type: ignore[arg-type]
            t0=0.0,
            t=0.01,
            responses=[
                DNSResponse(
                    t=0.01, rcode="NOERROR", answers=[DNSAnswer(rrtype="A", data=IP, ttl=60)]
                )
            ],
            endpoint=0,
        )
        for role, resolver in (("network", "udp://192.168.1.1:53"), ("control", "https://x"))
    ]
    observations: list[object] = [*dns]
    control_tcp = TCPObservation(ip=IP, port=443, role="control", t0=0.1, t=0.11, endpoint=0)
    observations += [
        control_tcp,
        TLSObservation(
            ip=IP,
            port=443,
            sni="example.com",
            role="control",
            t0=0.11,
            t=0.12,
            failure=vocabulary.CONNECTION_RESET,  # every connection to the address is reset
            endpoint=0,
        ),
    ]
    for attempt, flow in enumerate(flows):
        t0 = 1.0 + attempt
        observations += [
            TCPObservation(
                ip=IP, port=443, t0=t0, t=t0 + 0.01, attempt=attempt, endpoint=0, packets=flow
            ),
            TLSObservation(
                ip=IP,
                port=443,
                sni="web.telegram.org",
                role="network",
                t0=t0 + 0.01,
                t=t0 + 0.02,
                failure=vocabulary.CONNECTION_RESET,
                attempt=attempt,
                endpoint=0,
            ),
            # the control SNI reset too on this address: no contrast, an anomaly on its own
            TLSObservation(
                ip=IP,
                port=443,
                sni="example.com",
                role="control",
                t0=t0 + 0.03,
                t=t0 + 0.04,
                failure=vocabulary.CONNECTION_RESET,
                attempt=attempt,
                endpoint=0,
            ),
        ]
    return observations


def judge(observations: list[object]) -> tuple[str, list[str], list[str]]:
    result = analysis.analyse_endpoint(TARGET.endpoints[0], observations, offline=False)  # type: ignore[arg-type]
    return result.verdict, result.rules, result.evidence


def test_an_rst_far_from_the_syn_acks_ttl_makes_a_reset_blocked() -> None:
    verdict, rules, evidence = judge(reset_run([SYN_ACK, FORGED_RST], [SYN_ACK, FORGED_RST]))
    assert verdict == "blocked"
    assert rules == ["tls.reset.injected_ttl"]
    assert "the RST arrived with TTL 200 (window 0, IP ID 4321)" in evidence[0]
    assert "SYN-ACK with TTL 57: injected 143 hops away" in evidence[0]


@pytest.mark.parametrize(
    "flow",
    [[SYN_ACK, SERVER_RST], [SYN_ACK, NEAR_RST], [SYN_ACK], [FORGED_RST], []],
    ids=["servers-own", "two-hops", "no-rst", "no-syn-ack", "not-captured"],
)
def test_without_a_foreign_ttl_the_verdict_is_what_it_was(flow: list[Packet]) -> None:
    without = judge(reset_run([], []))
    assert without[0] == "anomaly"
    assert judge(reset_run(flow, flow)) == without


def test_the_control_flows_syn_ack_stands_in_when_the_rst_answered_the_syn() -> None:
    refused = TCPObservation(
        ip=IP, port=443, t0=1.0, t=1.01, failure=vocabulary.CONNECTION_RESET, packets=[FORGED_RST]
    )
    control = TCPObservation(ip=IP, port=443, role="control", t0=0.1, t=0.11, packets=[SYN_ACK])
    assert packets.injected_reset(refused, [control]) is not None
    assert packets.injected_reset(refused, []) is None


def injected(ttls: tuple[int | None, int | None]) -> DNSObservation:
    forged, real = ttls
    return DNSObservation(
        hostname="x.com",
        query_type="A",
        resolver="udp://8.8.8.8:53",
        role="network",
        t0=0.0,
        t=0.01,
        responses=[
            DNSResponse(
                t=0.01,
                rcode="NOERROR",
                ip_ttl=forged,
                answers=[DNSAnswer(rrtype="A", data="46.82.174.68", ttl=300)],
            ),
            DNSResponse(
                t=0.16,
                rcode="NOERROR",
                ip_ttl=real,
                answers=[DNSAnswer(rrtype="A", data="104.244.42.65", ttl=60)],
            ),
        ],
        endpoint=0,
    )


@pytest.mark.parametrize(
    ("ttls", "rule", "confidence"),
    [
        ((200, 63), "dns.injection.ttl_differs", 0.98),
        ((64, 63), "dns.injection.two_answers", 0.9),
        ((None, None), "dns.injection.two_answers", 0.9),
    ],
)
def test_dns_answers_from_two_senders_confirm_injection(
    ttls: tuple[int | None, int | None], rule: str, confidence: float
) -> None:
    (finding,) = analysis._injection([injected(ttls)])
    assert (finding.verdict, finding.rule.id, finding.confidence) == ("blocked", rule, confidence)


def test_the_capture_filter_names_the_whole_four_tuple() -> None:
    assert raw.Flow("tcp", "149.154.167.99", 443, 40001).bpf() == (
        "ip and tcp and src host 149.154.167.99 and src port 443 and dst port 40001"
    )
    assert raw.Flow("udp", "2001:db8::53", 53, 5353).bpf().startswith("ip6 and udp")


def test_packet_fields_are_bounded_on_the_wire() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"t": 0, "flags": "SA", "ttl": 300, "window": 0}, Packet)


@pytest.mark.skipif(not raw.available(), reason="needs CAP_NET_RAW and scapy")
async def test_a_capture_records_its_own_flow_and_no_other() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    network = SocketNetwork(raw=True)
    loop = asyncio.get_running_loop()

    async def other_flows() -> None:  # the same server and port, other local ports
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.read()
            writer.close()

    async with server:
        noise = asyncio.ensure_future(other_flows())
        tcp, _, _ = await network.exchange(Exchange(ip="127.0.0.1", port=port), loop.time())
        await noise
    syn_acks = [p for p in tcp.packets if p.flags == "SA"]
    assert len(syn_acks) == 1, tcp.packets
    assert sum(p.payload for p in tcp.packets) <= len(b"hello")


class _Answerer(asyncio.DatagramProtocol):
    """Answers every A query with one address."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        import dns.message
        import dns.rrset

        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.7")
        )
        self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]


@pytest.mark.skipif(not raw.available(), reason="needs CAP_NET_RAW and scapy")
async def test_a_captured_dns_response_carries_its_datagrams_ttl() -> None:
    from probe.measure import dns as probe_dns
    from probe.measure.network import Resolver

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Answerer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        ctx = probe_dns.QueryContext(
            "x.com", "network", Resolver("udp", "127.0.0.1", port), loop.time(), 2.0, 0.1, raw=True
        )
        settled = await (await probe_dns.query_udp(ctx)).settled()
    finally:
        transport.close()
    (response,) = settled.responses
    assert response.ip_ttl == 64  # a loopback datagram: the sender's initial TTL
    assert response.ip_id is not None
