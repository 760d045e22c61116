"""A TLS server that decides per SNI, the way an SNI-filtering middlebox would look to a client.

The server reads the ClientHello itself, looks the SNI up, and then:

- ``complete``: finishes the handshake with a lab-CA certificate for the name (for an unknown
  SNI or none, one for ``default_names``) and answers one HTTP/1.1 request if the client sends
  one, with the rule's page — or, for ``GET /bytes/N``, with N bytes (a bounded download; at
  ``download_rate`` bytes a second for every name when set: a slow origin);
- ``rogue``: the same with a certificate for the SNI from the rogue CA (MITM);
- ``reset``: sends a TCP RST;
- ``stall``: never answers, until the client gives up;
- ``close``: closes cleanly (FIN), so the client sees EOF mid-handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from collector.demo.servers.base import StreamServer, reset, wait_for_eof
from collector.demo.servers.clienthello import ClientHello, NotClientHello, parse_client_hello
from collector.demo.servers.names import match, normalise
from collector.demo.servers.pages import Page, http_response
from collector.demo.servers.pki import PKI, Issuer
from collector.demo.servers.session import TLSSession

TLSAction = Literal["complete", "reset", "stall", "close", "rogue"]
TLS_ACTIONS: Final[tuple[TLSAction, ...]] = get_args(TLSAction)
DEFAULT_NAMES: Final = ("default.lab",)
_HELLO_LIMIT: Final = 65536
_REQUEST_LIMIT: Final = 65536
_LINGER: Final = 5.0


@dataclass(frozen=True)
class TLSRule:
    action: TLSAction = "complete"
    page: Page = "normal"

    def __post_init__(self) -> None:
        if self.action not in TLS_ACTIONS:
            raise ValueError(f"unknown TLS action {self.action!r}; expected one of {TLS_ACTIONS}")


class TLSServer(StreamServer):
    """Per-SNI TLS behaviour; ``rules`` and ``default`` may be changed while it runs."""

    def __init__(
        self,
        pki: PKI,
        host: str = "127.0.0.1",
        port: int = 0,
        rules: Mapping[str, TLSRule] | None = None,
        default: TLSRule = TLSRule(),
        default_names: Sequence[str] = DEFAULT_NAMES,
        download_rate: float | None = None,
    ) -> None:
        super().__init__(host, port)
        self.download_rate = download_rate
        self.pki = pki
        self.rules = {normalise(name): rule for name, rule in (rules or {}).items()}
        self.default = default
        self.default_names = tuple(default_names)
        self.seen: list[str | None] = []
        """The SNI of every ClientHello read, in order (``None``: no SNI)."""

    def set(self, name: str, rule: TLSRule) -> None:
        self.rules[normalise(name)] = rule

    def remove(self, name: str) -> None:
        self.rules.pop(normalise(name), None)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello, received = await _read_client_hello(reader)
        if hello is None:
            return
        self.seen.append(hello.sni)
        matched = match(self.rules, hello.sni) if hello.sni else None
        rule = matched or self.default
        if rule.action == "reset":
            reset(writer)
        elif rule.action == "stall":
            await wait_for_eof(reader)
        elif rule.action == "close":
            writer.write_eof()
            await wait_for_eof(reader)
        else:
            names = [hello.sni] if hello.sni and (matched or rule.action == "rogue") else None
            await self._complete(rule, names or list(self.default_names), reader, writer, received)

    async def _complete(
        self,
        rule: TLSRule,
        names: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        received: bytes,
    ) -> None:
        issuer: Issuer = "rogue" if rule.action == "rogue" else "lab"
        session = TLSSession(self.pki.server_context(names, issuer), reader, writer, received)
        await session.handshake()
        request = await _read_request(session)
        size = _download_size(request)
        if size is not None:
            session.pace = self.download_rate
            await _send_bytes(session, size)
        elif request:
            await session.write(http_response(rule.page, _host(request) or names[0]))
        await session.close()
        writer.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LINGER):
                await wait_for_eof(reader)


async def _read_client_hello(reader: asyncio.StreamReader) -> tuple[ClientHello | None, bytes]:
    """The ClientHello and every byte read for it; ``None`` on EOF or anything but TLS."""
    data = b""
    while len(data) < _HELLO_LIMIT:
        chunk = await reader.read(_HELLO_LIMIT)
        if not chunk:
            return None, data
        data += chunk
        try:
            hello = parse_client_hello(data)
        except NotClientHello:
            return None, data
        if hello is not None:
            return hello, data
    return None, data


async def _read_request(session: TLSSession) -> bytes:
    """An HTTP request head, or ``b""`` if the client closed without sending one."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < _REQUEST_LIMIT:
        chunk = await session.read()
        if not chunk:
            return b""
        data += chunk
    return data


DOWNLOAD_PREFIX: Final = b"/bytes/"
MAX_DOWNLOAD: Final = 4 * 1024 * 1024
_CHUNK: Final = 16384


def _download_size(request: bytes) -> int | None:
    """``GET /bytes/N``: a bounded download of N bytes (at most 4 MiB), for throughput."""
    parts = request.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) < 2 or not parts[1].startswith(DOWNLOAD_PREFIX):
        return None
    digits = parts[1][len(DOWNLOAD_PREFIX) :]
    return min(int(digits), MAX_DOWNLOAD) if digits.isdigit() else None


async def _send_bytes(session: TLSSession, size: int) -> None:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    await session.write(head.encode())
    sent = 0
    while sent < size:
        chunk = min(_CHUNK, size - sent)
        await session.write(b"\0" * chunk)
        sent += chunk


def _host(request: bytes) -> str | None:
    for line in request.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            host = value.strip().decode("ascii", "replace")
            return (
                host[1 : host.find("]")] if host.startswith("[") else host.split(":")[0]
            ) or None
    return None
