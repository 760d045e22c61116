"""DNS servers over UDP and TCP (one port for both) and over TLS (RFC 7858), from a ``Zone``.

The zone decides; these servers carry out its replies, including the late and the doubled
ones. ``DNSServer`` plays a network's resolver or an authoritative server; ``DNSOverTLS``
plays a trusted control resolver (``tls://HOST:PORT``).
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import Sequence
from typing import Final, cast

from collector.demo.servers.base import Server, StreamServer, format_host
from collector.demo.servers.pki import PKI
from collector.demo.servers.zone import Zone, parse_query

_PORT_ATTEMPTS: Final = 20


class DNSServer(Server):
    """UDP and TCP on the same ``host`` and ``port``; ``Zone`` changes apply immediately."""

    def __init__(self, zone: Zone, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.zone = zone
        self._udp: asyncio.DatagramTransport | None = None
        self._protocol: _UDPProtocol | None = None
        self._tcp: DNSOverTCP | None = None

    @property
    def url(self) -> str:
        return f"udp://{self.address}"

    async def start(self) -> None:
        # With port 0, UDP picks the port and TCP may find it taken: try another one.
        for _ in range(_PORT_ATTEMPTS if self.port == 0 else 1):
            port = await self._start_udp(self.port)
            tcp = DNSOverTCP(self.zone, self.host, port)
            try:
                await tcp.start()
            except OSError as exc:
                await self._close_udp()
                if exc.errno != errno.EADDRINUSE or self.port != 0:
                    raise
                continue
            self._tcp, self.port = tcp, port
            return
        raise OSError(errno.EADDRINUSE, f"no free port for UDP and TCP on {self.host}")

    async def close(self) -> None:
        await self._close_udp()
        if self._tcp is not None:
            await self._tcp.close()
            self._tcp = None

    async def _start_udp(self, port: int) -> int:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UDPProtocol(self.zone), local_addr=(self.host, port)
        )
        self._udp, self._protocol = transport, protocol
        return int(transport.get_extra_info("sockname")[1])

    async def _close_udp(self) -> None:
        if self._udp is None or self._protocol is None:
            return
        self._protocol.cancel_pending()
        self._udp.close()
        await self._protocol.closed
        self._udp = self._protocol = None


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone) -> None:
        self._zone = zone
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.TimerHandle] = set()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        query = parse_query(data)
        if query is None:
            return
        loop = asyncio.get_running_loop()
        self._pending = {h for h in self._pending if h.when() > loop.time()}
        for reply in self._zone.plan(query, transport="udp"):
            wire = reply.message.to_wire()
            if reply.delay <= 0:
                self._send(wire, addr)
            else:
                self._pending.add(loop.call_later(reply.delay, self._send, wire, addr))

    def _send(self, wire: bytes, addr: tuple[str | int, ...]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(wire, addr)

    def cancel_pending(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()


class DNSOverTCP(StreamServer):
    """DNS over a stream (RFC 1035 §4.2.2 framing); with a TLS context, RFC 7858."""

    def __init__(
        self,
        zone: Zone,
        host: str = "127.0.0.1",
        port: int = 0,
        transport: str = "tcp",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host, port, tls)
        self.zone = zone
        self._transport = transport

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while header := await _read_or_eof(reader, 2):
            query = parse_query(await reader.readexactly(int.from_bytes(header, "big")))
            if query is None:
                return
            arrived = asyncio.get_running_loop().time()
            for reply in self.zone.plan(query, transport=self._transport):
                await asyncio.sleep(arrived + reply.delay - asyncio.get_running_loop().time())
                wire = reply.message.to_wire()
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()


class DNSOverTLS(DNSOverTCP):
    """DNS over TLS with a lab-CA certificate for ``host`` and any extra ``names``."""

    def __init__(
        self,
        zone: Zone,
        pki: PKI,
        host: str = "127.0.0.1",
        port: int = 0,
        names: Sequence[str] = (),
    ) -> None:
        tls = pki.server_context([host, *names])
        super().__init__(zone, host, port, transport="dot", tls=tls)

    @property
    def url(self) -> str:
        return f"tls://{format_host(self.host)}:{self.port}"


async def _read_or_eof(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return b""
