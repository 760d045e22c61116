"""Real clients for the lab servers' own tests."""

from __future__ import annotations

import asyncio
import socket
import ssl


def _handshake(
    address: tuple[str, int], sni: str | None, context: ssl.SSLContext, request: bytes
) -> bytes:
    with socket.create_connection(address, timeout=2) as raw:
        raw.settimeout(0.5)
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            if not request:
                return b""
            tls.sendall(request)
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
            return response


async def tls_client(
    address: tuple[str, int], sni: str | None, context: ssl.SSLContext, request: bytes = b""
) -> bytes:
    """A blocking ``ssl`` client run in a thread: what a plain Python client sees, errors and
    all. Returns the HTTP response if ``request`` was sent."""
    return await asyncio.to_thread(_handshake, address, sni, context, request)


def unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
