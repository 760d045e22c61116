"""Fetching an event source's feed over HTTP, bounded in size, time and destination.

A source URL is operator input, and whoever controls the feed controls where it redirects:
every hop's host (an IP literal, or every address its name resolves to) must be a public
address unless the operator allowed private ones (labs and tests). The check sits in the
resolver aiohttp connects through, so the address checked is the address connected to.
Redirects are followed here, hop by hop, at most `MAX_REDIRECTS`. The body is read in
chunks and refused past ``max_bytes`` (after decompression); the whole fetch, redirects
included, ends after ``timeout_seconds`` however slowly the server drips.

Every failure is a `FetchError` with a short ``reason`` from `REASONS` (a bounded metric
label) and a message for the operator.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

MAX_REDIRECTS: Final = 5
CHUNK: Final = 64 * 1024
REASONS: Final = (
    "address",
    "connect",
    "timeout",
    "too_large",
    "http_status",
    "redirects",
    "encoding",
    "feed",
    "internal",
)
USER_AGENT: Final = "censorwatch-event-source/1 (+https://censorwatch.org)"


class FetchError(Exception):
    """A feed that could not be fetched; ``reason`` is one of `REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class FetchLimits:
    timeout_seconds: float = 20.0
    max_bytes: int = 4 * 1024 * 1024
    allow_private: bool = False
    trusted_hosts: frozenset[str] = frozenset()  # may be private even when others may not


@dataclass(frozen=True)
class Fetched:
    """A 200 with its text, or a 304 (``text`` None): the feed is as it was."""

    url: str
    text: str | None
    content_type: str
    etag: str | None
    last_modified: str | None


def public(address: str) -> bool:
    """A globally routable unicast address (no private, loopback, link-local, CGNAT, …)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allow_private: bool, trusted: frozenset[str] = frozenset()) -> URL:
    """An http(s) URL whose host, if an IP literal, is allowed; else a `FetchError`."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise FetchError("address", f"not a URL: {url[:100]!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError("address", f"need an http:// or https:// URL, got {url[:100]!r}")
    if not _is_ip(parsed.host):
        try:
            parsed.host.encode("idna")
        except UnicodeError as exc:
            raise FetchError("address", f"not a valid host name: {parsed.host[:100]!r}") from exc
    private_ok = allow_private or parsed.host in trusted
    if not private_ok and _is_ip(parsed.host) and not public(parsed.host):
        raise FetchError("address", f"{parsed.host} is not a public address; refused")
    return parsed


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


async def check_resolves_public(url: str) -> None:
    """A `FetchError` when the URL's host name resolves to no public address."""
    host = URL(url).host or ""
    if not host or _is_ip(host):
        return
    resolver = PublicResolver()
    try:
        await resolver.resolve(host, 0, socket.AF_UNSPEC)
    except OSError as exc:
        if resolver.refused is not None:
            raise FetchError("address", resolver.refused) from exc
        raise
    finally:
        await resolver.close()


class PublicResolver(AbstractResolver):
    """The system resolver, keeping only public addresses; none left is a refusal."""

    def __init__(self, trusted: frozenset[str] = frozenset()) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self.trusted = trusted
        self.refused: str | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if host in self.trusted:
            return found
        kept = [r for r in found if public(r["host"])]
        if not kept:
            shown = ", ".join(sorted({r["host"] for r in found}))
            self.refused = f"{host} resolves to {shown}, not a public address; refused"
            raise OSError(self.refused)
        return kept

    async def close(self) -> None:
        await self._inner.close()


async def fetch(
    url: str, *, etag: str | None, last_modified: str | None, limits: FetchLimits
) -> Fetched:
    """GET with the validators of the last success; within ``limits`` or a `FetchError`."""
    try:
        async with asyncio.timeout(limits.timeout_seconds):
            return await _fetch(url, etag, last_modified, limits)
    except TimeoutError as exc:
        raise FetchError(
            "timeout", f"no complete answer within {limits.timeout_seconds:g} s"
        ) from exc


async def _fetch(
    url: str, etag: str | None, last_modified: str | None, limits: FetchLimits
) -> Fetched:
    resolver = None if limits.allow_private else PublicResolver(limits.trusted_hosts)
    connector = aiohttp.TCPConnector(resolver=resolver, limit=4, force_close=True)
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, application/rss+xml, "
               "application/atom+xml, application/json, application/xml;q=0.9, */*;q=0.5"}  # fmt: skip
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            target = check_url(current, limits.allow_private, limits.trusted_hosts)
            try:
                async with session.get(target, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        location = response.headers.get("Location", "")
                        if not location:
                            raise FetchError(
                                "http_status", f"HTTP {response.status} without Location"
                            )
                        current = urljoin(str(response.url), location)
                        continue
                    return await _answer(response, current, limits)
            except aiohttp.ClientError as exc:
                refused = resolver.refused if resolver is not None else None
                if refused is not None:
                    raise FetchError("address", refused) from exc
                raise FetchError("connect", f"{type(exc).__name__}: {_first_line(exc)}") from exc
        raise FetchError("redirects", f"more than {MAX_REDIRECTS} redirects")


async def _answer(response: aiohttp.ClientResponse, url: str, limits: FetchLimits) -> Fetched:
    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
    content_type = response.headers.get("Content-Type", "")
    if response.status == 304:
        return Fetched(url, None, content_type, etag, modified)
    if response.status != 200:
        raise FetchError("http_status", f"HTTP {response.status} {response.reason or ''}".strip())
    declared = response.content_length
    if declared is not None and declared > limits.max_bytes:
        raise FetchError("too_large", f"{declared} bytes announced, limit {limits.max_bytes}")
    body = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > limits.max_bytes:
            raise FetchError("too_large", f"more than {limits.max_bytes} bytes; refused")
    return Fetched(url, _decode(bytes(body), response), content_type, etag, modified)


def _decode(body: bytes, response: aiohttp.ClientResponse) -> str:
    charset = response.charset or "utf-8"
    try:
        return body.decode("utf-8-sig" if charset.lower() in ("utf-8", "utf8") else charset)
    except (UnicodeDecodeError, LookupError) as exc:
        raise FetchError("encoding", f"not {charset} text") from exc


def _first_line(exc: Any) -> str:
    return (str(exc).splitlines() or [""])[0][:200]
