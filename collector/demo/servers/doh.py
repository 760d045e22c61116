"""DNS over HTTPS (RFC 8484, GET and POST, ``application/dns-message``) from a ``Zone``.

Plays the probe's trusted control resolver: ``https://HOST:PORT/dns-query`` with a lab-CA
certificate for ``host``. A ``Silent`` name holds the request open until the server closes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import Sequence
from typing import Final

import dns.message
from aiohttp import web

from collector.demo.servers.app import start_app
from collector.demo.servers.base import Server, format_host
from collector.demo.servers.pki import PKI
from collector.demo.servers.zone import Zone, parse_query

DNS_MESSAGE: Final = "application/dns-message"


class DNSOverHTTPS(Server):
    def __init__(
        self,
        zone: Zone,
        pki: PKI,
        host: str = "127.0.0.1",
        port: int = 0,
        names: Sequence[str] = (),
        path: str = "/dns-query",
    ) -> None:
        super().__init__(host, port)
        self.zone = zone
        self.path = path
        self._tls = pki.server_context([host, *names])
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://{format_host(self.host)}:{self.port}{self.path}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(self.path, self._get)
        app.router.add_post(self.path, self._post)
        self._runner, self.port = await start_app(app, self.host, self.port, self._tls)

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _get(self, request: web.Request) -> web.StreamResponse:
        encoded = request.query.get("dns", "")
        try:
            wire = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise web.HTTPBadRequest(text="dns parameter is not base64url") from None
        return await self._answer(wire)

    async def _post(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != DNS_MESSAGE:
            raise web.HTTPUnsupportedMediaType(text=f"expected {DNS_MESSAGE}")
        return await self._answer(await request.read())

    async def _answer(self, wire: bytes) -> web.StreamResponse:
        query = parse_query(wire)
        if query is None:
            raise web.HTTPBadRequest(text="not a DNS query")
        replies = self.zone.plan(query, transport="doh")
        delay = replies[0].delay if replies else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closing.wait()
            raise web.HTTPServiceUnavailable(text="server closing")
        message = replies[0].message
        headers = {"Cache-Control": f"max-age={_min_ttl(message)}"}
        return web.Response(body=message.to_wire(), content_type=DNS_MESSAGE, headers=headers)


def _min_ttl(message: dns.message.Message) -> int:
    return min((rrset.ttl for rrset in message.answer), default=0)
