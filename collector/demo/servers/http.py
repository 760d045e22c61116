"""A plain HTTP server (aiohttp): an ordinary page for any Host, or in ``blockpage`` mode the
block page a censor would serve for any Host and path (DNS hijack, HTTP injection)."""

from __future__ import annotations

from aiohttp import web

from collector.demo.servers.app import start_app
from collector.demo.servers.base import Server, format_host
from collector.demo.servers.pages import PAGES, Page, render


class HTTPServer(Server):
    """``mode`` and ``status`` may be changed while it runs."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, mode: Page = "normal", status: int = 200
    ) -> None:
        super().__init__(host, port)
        if mode not in PAGES:
            raise ValueError(f"unknown HTTP mode {mode!r}; expected one of {PAGES}")
        self.mode: Page = mode
        self.status = status
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{format_host(self.host)}:{self.port}/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._page)
        self._runner, self.port = await start_app(app, self.host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _page(self, request: web.Request) -> web.Response:
        host = request.host.rsplit(":", 1)[0] if request.host else self.host
        text = render(self.mode, host)
        return web.Response(text=text, status=self.status, content_type="text/html")
