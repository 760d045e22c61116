"""A deliberately small HTTP/1.1 GET, enough to see a block page or a reset mid-request."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from typing import Final, Protocol

from probe import blockpages

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


async def get(channel: Channel, host: str, path: str, hints: tuple[str, ...] = ()) -> Response:
    await channel.send(request_bytes(host, path))
    raw = await _read_all(channel)
    if not raw:
        raise EmptyResponse("no response before end of stream")
    return parse(raw, hints)


async def _read_all(channel: Channel) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY:
        chunk = await channel.read()
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def parse(raw: bytes, hints: tuple[str, ...] = ()) -> Response:
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    match = re.match(rb"^HTTP/1\.[01] (\d{3})", status_line)
    if not sep or not match:
        raise BadResponse("not an HTTP/1.x response")
    title_match = _TITLE.search(body)
    title = title_match.group(1).decode("utf-8", "replace").strip()[:200] if title_match else None
    # Headers too: a censor often redirects to its block page instead of serving it.
    text = head.decode("latin-1") + "\n" + body.decode("utf-8", "replace")
    return Response(
        status=int(match.group(1)),
        body_sha256=hashlib.sha256(body).hexdigest(),
        body_length=len(body),
        title=title,
        blockpage=blockpages.match(text, hints),
    )
