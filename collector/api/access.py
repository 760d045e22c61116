"""Who may do what, checked at a handler's entrance before any body is read.

An unauthenticated client can make the collector read and parse at most the request line
and headers of an admin route: the token is looked up first, in a read-only connection,
and only then is the body touched. Write handlers check it again in their transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.auth import check_admin
from collector.state import STATE

T = TypeVar("T")


async def require_admin(request: web.Request) -> None:
    async with request.app[STATE].db.reading() as connection:
        await check_admin(connection, request.headers.get("Authorization"))


async def as_admin(request: web.Request, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` in one transaction that first checks the admin token again."""

    async def guarded(connection: AsyncConnection) -> T:
        await check_admin(connection, request.headers.get("Authorization"))
        return await work(connection)

    return await request.app[STATE].db.transaction(guarded)
