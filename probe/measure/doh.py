"""DNS over HTTPS (RFC 8484): the default control path. Kept apart so that aiohttp is
imported only when a DoH resolver is in use."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import dns.message

from probe import vocabulary
from probe.measure import failures
from probe.measure.dns import QueryContext, failure_of_exception, make_query
from probe.measure.network import Resolution


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300))


async def query_https(
    ctx: QueryContext, session: aiohttp.ClientSession, tls_context: ssl.SSLContext
) -> Resolution:
    """DoH (RFC 8484, POST)."""
    loop = asyncio.get_running_loop()
    query = make_query(ctx.hostname, ctx.rdtype)
    query.id = 0
    t0 = loop.time() - ctx.origin
    assert ctx.resolver.url is not None
    headers = {"content-type": "application/dns-message", "accept": "application/dns-message"}
    try:
        async with asyncio.timeout(ctx.timeout):
            async with session.post(
                ctx.resolver.url, data=query.to_wire(), headers=headers, ssl=tls_context
            ) as reply:
                if reply.status != 200:
                    raise _BadReply(reply.status)
                body = await _read_capped(reply, 65535)
        message = dns.message.from_wire(body)
    except Exception as exc:  # translated into a failure string at this edge
        return Resolution(ctx.observation(t0, loop.time() - ctx.origin, _failure(exc), []))
    return Resolution(ctx.from_responses(t0, [(loop.time(), 0, message)]))


async def _read_capped(reply: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.content.iter_chunked(4096):
        size += len(chunk)
        if size > limit:
            raise _BadReply(reply.status)
        chunks.append(chunk)
    return b"".join(chunks)


class _BadReply(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"DoH server answered HTTP {status}")
        self.status = status


def _failure(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return failures.from_exception(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return failures.from_exception(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return vocabulary.EOF_ERROR
    if isinstance(exc, aiohttp.ClientOSError):
        return failures.from_exception(exc)
    if isinstance(exc, _BadReply):
        return vocabulary.DNS_BOGUS_RESPONSE
    return failure_of_exception(exc)
