"""A real webhook receiver on loopback for delivery tests: scripted answers, every request
kept, signatures checked with the independent ``standardwebhooks`` package."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from collector.demo.servers.base import free_port


@dataclass
class Received:
    webhook_id: str
    status: int
    verified: bool
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers each request with the next scripted reply: a status, or ("slow", seconds)."""

    secret: str = ""
    script: list[Any] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        reply = self.script.pop(0) if self.script else 200
        if isinstance(reply, tuple):
            await asyncio.sleep(reply[1])
            reply = 200
        headers = {"Retry-After": "1"} if reply == 429 else None
        self.received.append(
            Received(
                request.headers.get("webhook-id", ""),
                reply,
                self._verify(body, request),
                body,
                time.monotonic(),
            )
        )
        return web.Response(status=reply, headers=headers)

    def _verify(self, body: bytes, request: web.Request) -> bool:
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:
            return False
        return True

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def delivered(self) -> Counter[str]:
        """2xx answers per webhook-id."""
        return Counter(r.webhook_id for r in self.received if 200 <= r.status < 300)

    async def wait_delivered(self, count: int, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while sum(self.delivered().values()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} deliveries expected, got {self.received}")
            await asyncio.sleep(0.05)
