"""Plain TCP endpoints: one that accepts and holds, one that resets, one where nothing listens."""

from __future__ import annotations

import asyncio
import socket

from collector.demo.servers.base import Server, StreamServer, bound_socket, reset, wait_for_eof


class TCPAcceptServer(StreamServer):
    """Accepts, sends ``banner`` if any, echoes if ``echo``, and holds until the client leaves."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, banner: bytes = b"", echo: bool = False
    ) -> None:
        super().__init__(host, port)
        self.banner = banner
        self.echo = echo

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.banner:
            writer.write(self.banner)
            await writer.drain()
        if not self.echo:
            await wait_for_eof(reader)
            return
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


class TCPResetServer(StreamServer):
    """Completes the TCP handshake, then answers with an RST at once."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reset(writer)


class ClosedPort(Server):
    """An address where nothing listens, so a connect is refused.

    The port stays bound (without ``listen``) while this is open, so no other socket can take
    it and turn "refused" into something else.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        sock = bound_socket(self.host, self.port, reuse_address=False)
        self._sock, self.port = sock, sock.getsockname()[1]

    async def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
