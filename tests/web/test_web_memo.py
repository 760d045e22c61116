"""The memo of rendered pages, in front of a real aiohttp handler: one render for a crowd,
kept for its lifetime only, never a 304 kept in place of the page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from collector.web import caching
from collector.web.memo import MAX_ENTRIES, Memo


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Page:
    renders: int = 0
    status: int = 200
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def handler(self, request: web.Request) -> web.StreamResponse:
        self.renders += 1
        await self.gate.wait()
        body = f"render {self.renders} of {request.path}".encode()
        return caching.respond(request, body, "text/html", status=self.status)


Served = tuple[TestClient[web.Request, web.Application], Page, Clock]


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    page, clock = Page(), Clock()
    memo = Memo(10, clock)

    async def route(request: web.Request) -> web.StreamResponse:
        return await memo.serve(request.path, request, page.handler)

    app = web.Application()
    app.router.add_get("/{name}", route)
    async with TestClient(TestServer(app)) as client:
        yield client, page, clock


async def test_a_crowd_arriving_during_a_render_waits_for_that_one(served: Served) -> None:
    client, page, _ = served
    crowd = [asyncio.create_task(client.get("/kz")) for _ in range(20)]
    await asyncio.sleep(0.2)
    page.gate.set()
    bodies = {await (await task).text() for task in crowd}
    assert bodies == {"render 1 of /kz"}
    assert page.renders == 1


async def test_a_page_is_served_again_for_its_lifetime_only(served: Served) -> None:
    client, page, clock = served
    page.gate.set()
    assert await (await client.get("/kz")).text() == "render 1 of /kz"
    clock.now += 9.9
    again = await client.get("/kz")
    assert await again.text() == "render 1 of /kz"
    assert 'cache;desc="hit"' in again.headers["Server-Timing"]
    assert await (await client.get("/ru")).text() == "render 2 of /ru"  # another key
    clock.now += 0.1
    assert await (await client.get("/kz")).text() == "render 3 of /kz"


async def test_a_conditional_request_gets_its_304_and_the_page_is_kept(served: Served) -> None:
    client, page, _ = served
    page.gate.set()
    etag = caching.etag_of(b"render 1 of /kz")
    first = await client.get("/kz", headers={"If-None-Match": etag})
    assert first.status == 304
    second = await client.get("/kz")
    assert (second.status, await second.text()) == (200, "render 1 of /kz")
    assert second.headers["ETag"] == etag
    assert page.renders == 1


async def test_errors_are_not_kept_and_the_memo_is_bounded(served: Served) -> None:
    client, page, _ = served
    page.gate.set()
    page.status = 404
    assert (await client.get("/zz")).status == 404
    assert (await client.get("/zz")).status == 404
    assert page.renders == 2
    page.status = 200
    for n in range(MAX_ENTRIES + 1):
        await client.get(f"/p{n}")
    assert (
        await (await client.get(f"/p{MAX_ENTRIES}")).text()
        == f"render {MAX_ENTRIES + 3} of /p{MAX_ENTRIES}"
    )
    assert (await (await client.get("/p0")).text()).startswith(f"render {MAX_ENTRIES + 4} ")
