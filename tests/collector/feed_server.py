"""A loopback HTTP server that publishes calendars and feeds, well or badly, and counts."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from collector.demo.servers.base import free_port


@dataclass
class FeedServer:
    """``/feed/NAME`` serves ``feeds[NAME]`` with an ETag and answers 304 to it; the other
    paths misbehave: ``/slow``, ``/huge``, ``/fail``, ``/drip``, ``/to/URL`` (302)."""

    port: int = 0
    feeds: dict[str, str] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)
    failing: set[str] = field(default_factory=set)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def feed(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.requests[name] += 1
        if name in self.failing:
            return web.Response(status=500, text="calendar backend down")
        text = self.feeds[name]
        etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            self.not_modified[name] += 1
            return web.Response(status=304, headers={"ETag": etag})
        kind = "text/calendar" if text.startswith("BEGIN:VCALENDAR") else "application/rss+xml"
        return web.Response(text=text, content_type=kind, headers={"ETag": etag})

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response(text="too late")

    async def huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/calendar"})
        await response.prepare(request)
        await response.write(b"BEGIN:VCALENDAR\r\n")
        chunk = b"X-FILLER:" + b"x" * 65_000 + b"\r\n"
        while True:  # endless
            await response.write(chunk)

    async def drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/calendar"})
        await response.prepare(request)
        while True:  # a byte at a time, never finishing
            await response.write(b"B")
            await asyncio.sleep(0.05)

    async def fail(self, request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.match_info["target"])

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/feed/{name}", self.feed),
                web.get("/slow", self.slow),
                web.get("/huge", self.huge),
                web.get("/drip", self.drip),
                web.get("/fail", self.fail),
                web.get("/to/{target:.+}", self.redirect),
            ]
        )
        return app


@asynccontextmanager
async def feed_server() -> AsyncIterator[FeedServer]:
    server = FeedServer(port=free_port())
    runner = web.AppRunner(server.app(), shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


@asynccontextmanager
async def hanging_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    port = free_port()
    server = await asyncio.start_server(hold, "127.0.0.1", port)
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
