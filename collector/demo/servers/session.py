"""A server-side TLS session over an asyncio stream, driven through memory BIOs.

A memory BIO lets the server read the ClientHello itself first (to decide by SNI) and then hand
those same bytes to OpenSSL, which completes the handshake as if it had read them. It also
lets a session play a slow origin: with ``pace`` set, what it sends leaves at that many bytes
a second, in slices, whole TLS records spread over time as a slow uplink would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from typing import Final, TypeVar

T = TypeVar("T")
_CHUNK: Final = 65536
_PACE_STEP: Final = 0.02  # seconds of a paced session's bytes written at once


class TLSSession:
    def __init__(
        self,
        context: ssl.SSLContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        received: bytes = b"",
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._incoming.write(received)
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._reader = reader
        self._writer = writer
        self.pace: float | None = None
        """Bytes a second on the wire from now on; None: as fast as the socket takes them."""

    async def handshake(self) -> None:
        await self._run(self._tls.do_handshake)

    async def read(self) -> bytes:
        """Application data, or ``b""`` once the client closed (cleanly or not)."""
        try:
            return await self._run(lambda: self._tls.read(_CHUNK))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    async def write(self, data: bytes) -> None:
        # Without partial writes (Python never enables them) SSL_write takes all or nothing.
        await self._run(lambda: self._tls.write(data))

    async def close(self) -> None:
        """Send close_notify without waiting for the client's."""
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
            self._tls.unwrap()
        await self._flush()

    async def _run(self, operation: Callable[[], T]) -> T:
        while True:
            try:
                result = operation()
            except ssl.SSLWantReadError:
                await self._flush()
                data = await self._reader.read(_CHUNK)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            await self._flush()
            return result

    async def _flush(self) -> None:
        if data := self._outgoing.read():
            if self.pace is None:
                self._writer.write(data)
                await self._writer.drain()
            else:
                await self._trickle(data, self.pace)

    async def _trickle(self, data: bytes, pace: float) -> None:
        """Write ``data`` at ``pace`` bytes a second, keeping to the schedule over sleeps that
        run late."""
        step = max(int(pace * _PACE_STEP), 1)
        started = time.monotonic()
        for sent in range(0, len(data), step):
            await asyncio.sleep(max(started + sent / pace - time.monotonic(), 0.0))
            self._writer.write(data[sent : sent + step])
            await self._writer.drain()
