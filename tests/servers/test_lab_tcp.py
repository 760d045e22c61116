from __future__ import annotations

import asyncio

import pytest

from collector.demo.servers import ClosedPort, TCPAcceptServer, TCPResetServer
from probe import vocabulary
from probe.measure import failures

HOST = "127.0.2.1"


async def test_accept_sends_its_banner_and_echoes() -> None:
    async with TCPAcceptServer(HOST, banner=b"hello\n", echo=True) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        banner = await reader.readline()
        writer.write(b"ping")
        echoed = await reader.readexactly(4)
        writer.close()
        await writer.wait_closed()

    assert (banner, echoed) == (b"hello\n", b"ping")


async def test_accept_holds_the_connection_open() -> None:
    async with TCPAcceptServer(HOST) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.1)
        writer.close()
        await writer.wait_closed()


async def test_closing_the_server_ends_held_connections() -> None:
    server = TCPAcceptServer(HOST)
    await server.start()
    reader, writer = await asyncio.open_connection(HOST, server.port)
    await asyncio.sleep(0.01)
    await server.close()

    assert await asyncio.wait_for(reader.read(1), 1) == b""
    writer.close()
    await writer.wait_closed()


async def test_reset_sends_rst() -> None:
    async with TCPResetServer(HOST) as server:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        with pytest.raises(ConnectionResetError) as caught:
            await asyncio.wait_for(reader.read(1), 1)
        writer.close()

    assert failures.from_exception(caught.value) == vocabulary.CONNECTION_RESET


async def test_closed_port_refuses_connections() -> None:
    async with ClosedPort(HOST) as closed:
        assert closed.port != 0
        with pytest.raises(ConnectionRefusedError) as caught:
            await asyncio.open_connection(HOST, closed.port)

    assert failures.from_exception(caught.value) == vocabulary.CONNECTION_REFUSED
