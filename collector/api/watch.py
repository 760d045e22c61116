"""Watch windows API: windows opened by hand (admin), and every current window (public)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Final

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.watch import Window, active
from collector.api.bodies import json_response, read_json
from collector.api.errors import APIError, bad_request, unprocessable
from collector.api.filters import check_keys
from collector.auth import check_admin, utc_now
from collector.enrolment import watch
from collector.state import STATE
from collector.store import events as eventstore
from collector.store import watch as watchstore
from collector.store.db import as_utc

Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]
ServiceName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,64}$")]
LONGEST: Final = dt.timedelta(days=7)


class WindowIn(msgspec.Struct, forbid_unknown_fields=True):
    cc: Country
    start: dt.datetime
    end: dt.datetime
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    services: Annotated[list[ServiceName], msgspec.Meta(max_length=64)] | None = None

    def to_window(self, window_id: str) -> Window:
        start, end = _utc(self.start, "start"), _utc(self.end, "end")
        if end <= start:
            raise unprocessable("end must be later than start")
        if end - start > LONGEST:
            raise unprocessable(f"a watch window lasts at most {LONGEST.days} days")
        services = tuple(dict.fromkeys(self.services)) if self.services is not None else None
        return Window(f"manual:{window_id}", self.cc, start, end, services, self.title, "manual")


def _utc(moment: dt.datetime, name: str) -> dt.datetime:
    try:
        return as_utc(moment)
    except OverflowError as exc:
        raise bad_request(f"{name}: outside years 1-9999 in UTC") from exc


def view(window: Window, now: dt.datetime) -> dict[str, object]:
    return {
        "id": window.id,
        "cc": window.cc,
        "title": window.title,
        "start": window.start,
        "end": window.end,
        "services": list(window.services) if window.services is not None else None,
        "source": window.source,
        "active": window.covers(now),
    }


async def create(request: web.Request) -> web.Response:
    state = request.app[STATE]
    async with state.db.reading() as connection:
        await check_admin(connection, request.headers.get("Authorization"))
    window_id = uuid.uuid4().hex
    window = (await read_json(request, WindowIn)).to_window(window_id)
    now = utc_now()

    async def work(connection: AsyncConnection) -> None:
        await check_admin(connection, request.headers.get("Authorization"))
        await watchstore.add(connection, window_id, window, now)

    await state.db.transaction(work)
    return json_response(view(window, now), status=201)


async def remove(request: web.Request) -> web.Response:
    state = request.app[STATE]
    window_id = request.match_info["window_id"].removeprefix("manual:")

    async def work(connection: AsyncConnection) -> bool:
        await check_admin(connection, request.headers.get("Authorization"))
        return await watchstore.remove(connection, window_id)

    if not await state.db.transaction(work):
        raise APIError(404, "not_found", "no such watch window", window_id=window_id[:64])
    return web.Response(status=204)


async def listing(request: web.Request) -> web.Response:
    """Current and coming windows per country (events' windows included)."""
    check_keys(request.query, frozenset({"cc", "active"}))
    cc = request.query.get("cc", "").upper()
    if cc and not (len(cc) == 2 and cc.isascii() and cc.isalpha()):
        raise bad_request("cc: expected a two-letter country code")
    only_active = request.query.get("active", "false")
    if only_active not in ("true", "false"):
        raise bad_request("active: expected true or false")
    state = request.app[STATE]
    now = utc_now()
    async with state.db.reading() as connection:
        horizon = dt.timedelta(seconds=state.config.watch_horizon_seconds)
        countries = [cc] if cc else await _countries(connection, now, horizon)
        found: list[Window] = []
        for country in countries:
            found += await watch.windows(connection, state.config, state.targets.text, country, now)
    if only_active == "true":
        found = active(found, now)
    return json_response({"windows": [view(w, now) for w in found]})


async def _countries(
    connection: AsyncConnection, now: dt.datetime, horizon: dt.timedelta
) -> list[str]:
    """Countries with a manual window, or an event that may have one now or soon."""
    manual = {w.cc for w in await watchstore.current(connection, now)}
    recent = await eventstore.listing(
        connection, since=now - dt.timedelta(days=2), until=now + horizon
    )
    return sorted(manual | {e.cc for e in recent})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/watch-windows", listing),
        web.post("/api/v1/watch-windows", create),
        web.delete("/api/v1/watch-windows/{window_id}", remove),
    ]
