"""A deliberately small HTTP/1.1 GET, enough to see a block page or a reset mid-request."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from typing import Final, Protocol

from probe.verdicts import blockpages

USER_AGENT: Final = "censorwatch-probe"
MAX_BODY: Final = 256 * 1024
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class Channel(Protocol):
    async def send(self, payload: bytes) -> None: ...
    async def read(self) -> bytes: ...


@dataclass
class PlainChannel:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, payload: bytes) -> None:
        self.writer.write(payload)
        await self.writer.drain()

    async def read(self) -> bytes:
        return await self.reader.read(65536)

    async def discard(self) -> int:
        return len(await self.reader.read(65536))


class BadResponse(ValueError):
    """Bytes that are not an HTTP response."""


class EmptyResponse(EOFError):
    """The peer closed the connection without answering."""


@dataclass(frozen=True)
class Response:
    status: int
    body_sha256: str
    body_length: int
    title: str | None
    blockpage: str | None


def request_bytes(host: str, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


async def get(
    channel: Channel, host: str, path: str, hints: tuple[str, ...] = (), within: float = 5.0
) -> Response:
    """GET and read the response until its length is complete, the peer closes, or time is
    up; a block page injected on a connection left open is still seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    received = bytearray()
    async with asyncio.timeout_at(deadline):
        await channel.send(request_bytes(host, path))
    try:
        async with asyncio.timeout_at(deadline):
            await _read_response(channel, received)
    except TimeoutError:
        if b"\r\n\r\n" not in received:
            raise
    if not received:
        raise EmptyResponse("no response before end of stream")
    return parse(bytes(received), hints)


async def _read_response(channel: Channel, received: bytearray) -> None:
    while len(received) < MAX_BODY and not _complete(received):
        chunk = await channel.read()
        if not chunk:
            return
        received += chunk


def _complete(received: bytearray) -> bool:
    head, sep, body = bytes(received).partition(b"\r\n\r\n")
    if not sep:
        return False
    lowered = head.lower()
    length = re.search(rb"\r\ncontent-length:\s*(\d+)", lowered)
    if length:
        return len(body) >= int(length.group(1))
    if re.search(rb"\r\ntransfer-encoding:\s*chunked", lowered):
        return body.endswith(b"0\r\n\r\n")
    status = re.match(rb"^http/1\.[01] (\d{3})", lowered)
    return bool(status) and status.group(1) in (b"204", b"304")  # type: ignore[union-attr]


def parse(raw: bytes, hints: tuple[str, ...] = ()) -> Response:
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    match = re.match(rb"^HTTP/1\.[01] (\d{3})", status_line)
    if not sep or not match:
        raise BadResponse("not an HTTP/1.x response")
    title_match = _TITLE.search(body)
    title = title_match.group(1).decode("utf-8", "replace").strip()[:200] if title_match else None
    # Headers too: a censor often redirects to its block page instead of serving it.
    headers = head.decode("latin-1")
    text = body.decode("utf-8", "replace")
    status = int(match.group(1))
    found = blockpages.match(headers) or blockpages.match(text, hints)
    if status == 451:
        found = found or "http.status_451"  # RFC 7725: Unavailable For Legal Reasons
    return Response(
        status=status,
        body_sha256=hashlib.sha256(body).hexdigest(),
        body_length=len(body),
        title=title,
        blockpage=found,
    )
