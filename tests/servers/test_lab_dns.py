from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest

from collector.demo.servers import (
    PKI,
    Answer,
    Delay,
    DNSOverHTTPS,
    DNSOverTLS,
    DNSServer,
    Double,
    Refused,
    ServFail,
    Silent,
    Zone,
)

HOST = "127.0.0.53"
REAL = Answer(("10.0.1.10",), ttl=300)
FORGED = Answer(("10.10.34.35",), ttl=60)


@pytest.fixture
def zone() -> Zone:
    return Zone(
        {
            "web.telegram.org": REAL,
            "servfail.lab": ServFail(),
            "refused.lab": Refused(),
            "silent.lab": Silent(),
            "injected.lab": Double(FORGED, REAL, gap=0.02),
            "slow.lab": Delay(0.2, REAL),
        }
    )


@pytest.fixture
async def server(zone: Zone) -> AsyncIterator[DNSServer]:
    async with DNSServer(zone, HOST) as server:
        yield server


def addresses(response: dns.message.Message) -> list[str]:
    return [rd.to_text() for rrset in response.answer for rd in rrset]


def rcode(response: dns.message.Message) -> str:
    return dns.rcode.to_text(response.rcode())


@pytest.mark.parametrize("query", [dns.asyncquery.udp, dns.asyncquery.tcp])
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web.telegram.org", ("NOERROR", ["10.0.1.10"])),
        ("unknown.lab", ("NXDOMAIN", [])),
        ("servfail.lab", ("SERVFAIL", [])),
        ("refused.lab", ("REFUSED", [])),
    ],
)
async def test_answers_over_udp_and_tcp(
    server: DNSServer, query: object, name: str, expected: tuple[str, list[str]]
) -> None:
    assert callable(query)
    response = await query(dns.message.make_query(name, "A"), HOST, port=server.port, timeout=2)

    assert (rcode(response), addresses(response)) == expected
    assert server.url == f"udp://{HOST}:{server.port}"


async def test_double_sends_two_responses_to_one_query(server: DNSServer) -> None:
    query = dns.message.make_query("injected.lab", "A")
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, query.to_wire(), (HOST, server.port))
        wires = [await asyncio.wait_for(loop.sock_recv(sock, 65535), 2) for _ in range(2)]

    first, second = (dns.message.from_wire(wire) for wire in wires)
    assert first.id == second.id == query.id
    assert (addresses(first), addresses(second)) == (["10.10.34.35"], ["10.0.1.10"])


async def test_double_gives_tcp_only_the_real_answer(server: DNSServer) -> None:
    query = dns.message.make_query("injected.lab", "A")

    response = await dns.asyncquery.tcp(query, HOST, port=server.port, timeout=2)

    assert addresses(response) == ["10.0.1.10"]


async def test_silent_never_answers(server: DNSServer) -> None:
    with pytest.raises(dns.exception.Timeout):
        await dns.asyncquery.udp(
            dns.message.make_query("silent.lab", "A"), HOST, port=server.port, timeout=0.2
        )


async def test_delay_answers_late(server: DNSServer) -> None:
    started = time.monotonic()
    response = await dns.asyncquery.udp(
        dns.message.make_query("slow.lab", "A"), HOST, port=server.port, timeout=2
    )

    assert time.monotonic() - started >= 0.2
    assert addresses(response) == ["10.0.1.10"]


async def test_behaviour_changes_while_running(server: DNSServer, zone: Zone) -> None:
    query = dns.message.make_query("web.telegram.org", "A")
    zone.set("web.telegram.org", Answer(("10.0.2.2",)))

    response = await dns.asyncquery.udp(query, HOST, port=server.port, timeout=2)

    assert addresses(response) == ["10.0.2.2"]


async def test_dns_over_tls_is_verified_against_the_lab_ca(zone: Zone, pki: PKI) -> None:
    async with DNSOverTLS(zone, pki, HOST) as server:
        response = await dns.asyncquery.tls(
            dns.message.make_query("web.telegram.org", "A"),
            HOST,
            port=server.port,
            timeout=2,
            ssl_context=pki.client_context(),
            server_hostname=HOST,
        )

    assert server.url == f"tls://{HOST}:{server.port}"
    assert addresses(response) == ["10.0.1.10"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_dns_over_https_is_verified_against_the_lab_ca(
    zone: Zone, pki: PKI, method: str
) -> None:
    wire = dns.message.make_query("web.telegram.org", "A", id=0).to_wire()
    async with (
        DNSOverHTTPS(zone, pki, HOST) as server,
        aiohttp.ClientSession() as session,
    ):
        assert server.url == f"https://{HOST}:{server.port}/dns-query"
        if method == "GET":
            encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
            request = session.get(server.url, params={"dns": encoded}, ssl=pki.client_context())
        else:
            headers = {"Content-Type": "application/dns-message"}
            request = session.post(server.url, data=wire, headers=headers, ssl=pki.client_context())
        async with request as http:
            body = await http.read()
            assert http.status == 200
            assert http.content_type == "application/dns-message"
            assert http.headers["Cache-Control"] == "max-age=300"

    assert addresses(dns.message.from_wire(body)) == ["10.0.1.10"]


async def test_dns_over_https_silent_holds_until_closed(zone: Zone, pki: PKI) -> None:
    wire = dns.message.make_query("silent.lab", "A", id=0).to_wire()
    encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
    async with DNSOverHTTPS(zone, pki, HOST) as server, aiohttp.ClientSession() as session:
        request = session.get(server.url, params={"dns": encoded}, ssl=pki.client_context())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2), request:
                pass


async def test_dns_over_https_rejects_what_is_not_a_query(zone: Zone, pki: PKI) -> None:
    async with DNSOverHTTPS(zone, pki, HOST) as server, aiohttp.ClientSession() as session:
        request = session.get(server.url, params={"dns": "!!"}, ssl=pki.client_context())
        async with request as response:
            assert response.status == 400
