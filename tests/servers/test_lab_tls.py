from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest

from collector.demo.servers import BLOCKPAGE_TITLE, PKI, TLSRule, TLSServer
from probe import vocabulary
from probe.measure import failures

from .clients import tls_client, unverified_context

HOST = "127.0.1.10"


@pytest.fixture
async def server(pki: PKI) -> AsyncIterator[TLSServer]:
    rules = {
        "web.telegram.org": TLSRule("complete"),
        "reset.lab": TLSRule("reset"),
        "stall.lab": TLSRule("stall"),
        "close.lab": TLSRule("close"),
        "rogue.lab": TLSRule("rogue"),
        "*.blocked.lab": TLSRule("rogue", page="blockpage"),
    }
    async with TLSServer(pki, HOST, rules=rules) as server:
        yield server


async def failure_for(server: TLSServer, sni: str, context: ssl.SSLContext) -> str:
    try:
        await tls_client((HOST, server.port), sni, context)
    except OSError as exc:
        return failures.from_exception(exc)
    raise AssertionError(f"the handshake with SNI {sni} succeeded")


async def test_complete_verifies_and_serves_http(server: TLSServer, pki: PKI) -> None:
    request = b"GET / HTTP/1.1\r\nHost: web.telegram.org\r\n\r\n"

    response = await tls_client(
        (HOST, server.port), "web.telegram.org", pki.client_context(), request
    )

    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"<title>web.telegram.org</title>" in response
    assert server.seen == ["web.telegram.org"]


@pytest.mark.parametrize(
    ("sni", "failure"),
    [
        ("reset.lab", vocabulary.CONNECTION_RESET),
        ("stall.lab", vocabulary.GENERIC_TIMEOUT),
        ("close.lab", vocabulary.EOF_ERROR),
        ("rogue.lab", vocabulary.SSL_UNKNOWN_AUTHORITY),
    ],
)
async def test_interference_as_a_client_sees_it(
    server: TLSServer, pki: PKI, sni: str, failure: str
) -> None:
    assert await failure_for(server, sni, pki.client_context()) == failure


async def test_reset_raises_connection_reset(server: TLSServer, pki: PKI) -> None:
    with pytest.raises(ConnectionResetError):
        await tls_client((HOST, server.port), "reset.lab", pki.client_context())


async def test_rogue_certificate_is_for_the_name_from_the_rogue_ca(
    server: TLSServer, pki: PKI
) -> None:
    rogue = ssl.create_default_context(cafile=pki.rogue_ca_file)
    request = b"GET / HTTP/1.1\r\nHost: www.blocked.lab\r\n\r\n"

    response = await tls_client((HOST, server.port), "www.blocked.lab", rogue, request)

    assert f"<title>{BLOCKPAGE_TITLE}</title>".encode() in response


@pytest.mark.parametrize("sni", ["example.com", None])
async def test_unknown_or_no_sni_completes_with_the_default_certificate(
    server: TLSServer, pki: PKI, sni: str | None
) -> None:
    context = pki.client_context()
    context.check_hostname = False  # the certificate is for default.lab, whatever was asked

    await tls_client((HOST, server.port), sni, context)

    assert await failure_for(server, "example.com", pki.client_context()) == (
        vocabulary.SSL_INVALID_HOSTNAME
    )
    assert server.seen[0] == sni


async def test_default_and_rules_change_while_running(server: TLSServer, pki: PKI) -> None:
    server.default = TLSRule("reset")
    server.set("reset.lab", TLSRule("complete"))

    await tls_client((HOST, server.port), "reset.lab", pki.client_context())
    assert await failure_for(server, "example.com", unverified_context()) == (
        vocabulary.CONNECTION_RESET
    )


async def test_a_client_that_is_not_tls_is_dropped(server: TLSServer) -> None:
    reader, writer = await asyncio.open_connection(HOST, server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: web.telegram.org\r\n\r\n")

    assert await asyncio.wait_for(reader.read(), 1) == b""
    writer.close()
    await writer.wait_closed()
