"""An admin-only collection of the API: its routes, its 404, and the lookup of one item.

Event sources and subscribers are both ``/api/v1/{name}`` (list, add) and
``/api/v1/{name}/{id}`` (show, change, remove, one action), every route for admins only;
what differs is the store behind them, how an item changes, and the action.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api.access import as_admin
from collector.api.bodies import json_response
from collector.api.errors import APIError, Handler

T = TypeVar("T")


class Item(Protocol):
    def view(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AdminCollection:
    path: str  # "/api/v1/subscribers"
    key: str  # the item's id in the path: "subscriber_id"
    noun: str  # for the 404: "no such subscriber"
    lookup: Callable[[AsyncConnection, str], Awaitable[Item | None]]
    delete: Callable[[AsyncConnection, str], Awaitable[bool]]

    def ident(self, request: web.Request) -> str:
        return request.match_info[self.key]

    def missing(self, ident: str) -> APIError:
        evidence: dict[str, Any] = {self.key: ident[:64]}
        return APIError(404, "not_found", f"no such {self.noun}", **evidence)

    async def one(
        self, request: web.Request, work: Callable[[AsyncConnection, str], Awaitable[T | None]]
    ) -> T:
        """``work`` on the item the path names, as admin; None or False from it is a 404."""
        ident = self.ident(request)
        found = await as_admin(request, lambda connection: work(connection, ident))
        if found is None or found is False:
            raise self.missing(ident)
        return found

    async def show(self, request: web.Request) -> web.Response:
        found = await self.one(request, self.lookup)
        return json_response(found.view())

    async def remove(self, request: web.Request) -> web.Response:
        await self.one(request, self.delete)
        return web.Response(status=204)

    def routes(
        self,
        *,
        listing: Handler,
        create: Handler,
        change: tuple[str, Handler],
        action: tuple[str, Handler],
    ) -> list[web.RouteDef]:
        """``change`` is (HTTP method, handler); ``action`` is (path segment, POST handler)."""
        item = f"{self.path}/{{{self.key}}}"
        (method, changer), (segment, act) = change, action
        return [
            web.get(self.path, listing),
            web.post(self.path, create),
            web.get(item, self.show),
            web.route(method, item, changer),
            web.delete(item, self.remove),
            web.post(f"{item}/{segment}", act),
        ]
