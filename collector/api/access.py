"""Who may do what, checked at a handler's entrance before any body is read.

An unauthenticated client can make the collector read and parse at most the request line
and headers of an admin route: the token is looked up first, in a read-only connection,
and only then is the body touched. Write handlers check it again in their transaction.
"""

from __future__ import annotations

from aiohttp import web

from collector.auth import check_admin
from collector.state import STATE


async def require_admin(request: web.Request) -> None:
    async with request.app[STATE].db.reading() as connection:
        await check_admin(connection, request.headers.get("Authorization"))
