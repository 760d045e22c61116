"""What every lab server shares: a lifecycle, an address, and connections it can end.

A server binds when started and releases everything when closed, so a test that uses it as an
async context manager leaves no socket or task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Server(ABC):
    """A server bound to ``host``; ``port`` is the real port once started (0 asks for any)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @property
    def address(self) -> str:
        """``host:port``, bracketing IPv6, as the probe's ``--resolver`` wants it."""
        return f"{format_host(self.host)}:{self.port}"

    @property
    def url(self) -> str | None:
        """How a client names this server (``udp://…``, ``https://…/dns-query``), if it has a
        conventional URL."""
        return None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class StreamServer(Server):
    """A TCP server whose connections are tracked, so closing the server ends them all."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port)
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._closing = False
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self._closing = True
        for task, writer in list(self._connections.items()):
            writer.transport.abort()
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server, self._closing = None, False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await self.handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to report
        except asyncio.CancelledError:
            # Our own close() asked for this; ending the task cancelled would make asyncio's
            # stream callback log an error in Python 3.11.
            if not self._closing:
                raise
        finally:
            del self._connections[task]
            writer.close()

    @abstractmethod
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection; the caller closes the writer afterwards."""


def reset(writer: asyncio.StreamWriter) -> None:
    """End a connection with a TCP RST instead of a FIN: linger on, zero timeout, close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def wait_for_eof(reader: asyncio.StreamReader) -> None:
    """Read and discard until the client closes its side."""
    with contextlib.suppress(OSError):
        while await reader.read(65536):
            pass


def format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bound_socket(host: str, port: int, *, reuse_address: bool = True) -> socket.socket:
    """A TCP socket bound to ``host``/``port`` and not yet listening."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
