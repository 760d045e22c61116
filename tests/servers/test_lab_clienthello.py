from __future__ import annotations

import ssl

import pytest

from collector.demo.servers.clienthello import NotClientHello, parse_client_hello


def client_hello(sni: str | None) -> bytes:
    """The first flight of a real OpenSSL client."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def split_into_records(flight: bytes, size: int) -> bytes:
    """The same handshake message carried in several records of ``size`` bytes."""
    message = flight[5:]
    records = b""
    for i in range(0, len(message), size):
        chunk = message[i : i + size]
        records += flight[:3] + len(chunk).to_bytes(2, "big") + chunk
    return records


@pytest.mark.parametrize("sni", ["web.telegram.org", "x.com", None])
def test_reads_the_sni_of_a_real_client_hello(sni: str | None) -> None:
    flight = client_hello(sni)

    hello = parse_client_hello(flight)

    assert hello is not None
    assert (hello.sni, hello.size) == (sni, len(flight))


def test_needs_the_whole_client_hello() -> None:
    flight = client_hello("web.telegram.org")

    assert all(parse_client_hello(flight[:n]) is None for n in range(len(flight)))


def test_reads_a_client_hello_split_over_records() -> None:
    flight = split_into_records(client_hello("signal.org"), 100)

    hello = parse_client_hello(flight + b"trailing")

    assert hello is not None
    assert (hello.sni, hello.size) == ("signal.org", len(flight))


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: x.com\r\n\r\n",
        b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",  # a ServerHello
        b"\x16\x03\x01\x00\x06\x01\x00\x00\x02\x03\x03",  # truncated inside the hello
    ],
)
def test_rejects_anything_else(data: bytes) -> None:
    with pytest.raises(NotClientHello):
        parse_client_hello(data)
