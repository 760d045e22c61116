"""Rendered pages kept for a few seconds, so a crowd opening one link costs one render.

When a link is shared during a blackout, thousands open the same page within a minute. A
page rendered for one address, language and origin is served again to everyone who asks
within ``status_cache_seconds`` (default 10; 0 turns it off), and requests that arrive
while it is being rendered wait for that render instead of starting their own. Pages
already tell browsers and proxies they may keep them for 30 seconds, so a page up to ten
seconds old promises nothing new.

Why a short lifetime and not the data's commit cursor: ingest moves the cursor every few
seconds on a busy collector, exactly when the crowd comes, and on PostgreSQL the cursor is
a transaction id, whose order is not commit order, so an unchanged maximum does not prove
unchanged data. A lifetime bounds staleness either way.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from collector.web import caching

MAX_ENTRIES: Final = 256
_NOT_KEPT: Final = frozenset({"etag", "content-length", "content-type", "server-timing"})


@dataclass(frozen=True)
class Entry:
    body: bytes
    content_type: str
    headers: dict[str, str]
    made: float

    @classmethod
    def of(cls, response: web.Response, made: float) -> Entry | None:
        """What a response leaves to be replayed; None for anything but a 200 with a body."""
        if response.status != 200 or not isinstance(response.body, bytes):
            return None
        headers = {k: v for k, v in response.headers.items() if k.lower() not in _NOT_KEPT}
        return cls(response.body, response.content_type, headers, made)

    def replay(self, request: web.Request, age: float) -> web.Response:
        headers = {**self.headers, "Server-Timing": f'cache;desc="hit";dur={age * 1000:.0f}'}
        return caching.respond(request, self.body, self.content_type, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Memo:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[Entry | None]] = {}

    def fresh(self, key: Hashable) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry.made >= self.seconds:
            return None
        self._entries.move_to_end(key)
        return entry

    def _keep(self, key: Hashable, entry: Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)

    async def serve(
        self, key: Hashable, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """A fresh entry's replay, the render in progress's, or a new render (kept)."""
        if self.seconds <= 0:
            return await handler(request)
        entry = self.fresh(key)
        if entry is None and key in self._pending:
            entry = await asyncio.shield(self._pending[key])
        if entry is not None:
            return entry.replay(request, self.clock() - entry.made)
        pending: asyncio.Future[Entry | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = pending
        made = None
        try:
            # rendered as if unconditional, so that what is kept is the page, never a 304
            conditional = "If-None-Match" in request.headers
            headers = request.headers.copy()
            headers.popall("If-None-Match", None)
            response = await handler(request.clone(headers=headers) if conditional else request)
            if isinstance(response, web.Response):
                made = Entry.of(response, self.clock())
            if made is None:
                return response
            self._keep(key, made)
            return made.replay(request, 0.0) if conditional else response
        finally:
            if self._pending.get(key) is pending:
                del self._pending[key]
            pending.set_result(made)  # waiters without an entry render for themselves
