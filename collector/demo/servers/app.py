"""Running an aiohttp application on a socket bound here, so that port 0 reports its port."""

from __future__ import annotations

import ssl

from aiohttp import web

from collector.demo.servers.base import bound_socket


async def start_app(
    app: web.Application, host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """The running application's runner (``cleanup()`` stops it) and its real port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = bound_socket(host, port)
    try:
        await web.SockSite(runner, sock, ssl_context=tls).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner, sock.getsockname()[1]
