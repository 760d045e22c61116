"""Events API: announced livestreams, protest calls and the like (writes need admin)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Annotated, Any, Final, Literal

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.events import (
    EventFeedError,
    ImportOptions,
    event_from_mapping,
    options_for,
    parse,
    sniff,
)
from alerts.model import EVENT_KINDS, Event
from collector.alerting.sources import PollSettings
from collector.api.access import as_admin, require_admin
from collector.api.bodies import json_response, read_json
from collector.api.errors import APIError, bad_request, unprocessable
from collector.api.filters import check_keys, parse_time
from collector.auth import check_admin, utc_now
from collector.state import STATE
from collector.store import events as eventstore

MAX_FEED_BYTES: Final = 4 * 1024 * 1024
MAX_SERIES: Final = 128
Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
EventKind = Literal["livestream", "protest", "election", "other"]
assert EventKind.__args__ == EVENT_KINDS  # type: ignore[attr-defined]


class EventIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The body of ``POST``/``PUT /api/v1/events``, declared for the OpenAPI document; the
    handlers check a body with ``alerts.events.event_from_mapping``, the one check every
    event passes, however it arrives."""

    kind: EventKind = "other"
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    cc: Country
    start: dt.datetime
    end: dt.datetime | None = None
    duration_seconds: Annotated[int, msgspec.Meta(ge=0, le=3_000_000)] | None = None
    source_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=32)] = []
    id: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_.:@-]{0,128}$")] | None = (
        None  # "": made up
    )
    series: Annotated[str, msgspec.Meta(max_length=MAX_SERIES)] | None = None  # "": none


async def _event_body(request: web.Request, event_id: str | None = None) -> Event:
    item = await read_json(request, dict[str, Any])
    if event_id is not None:
        item.pop("id", None)
    series = item.get("series")
    if isinstance(series, str) and len(series) > MAX_SERIES:
        raise bad_request(f"series: at most {MAX_SERIES} characters", field="series")
    try:
        event = event_from_mapping(item, "event")
    except EventFeedError as exc:
        if _unprocessable(exc, item):
            raise unprocessable(str(exc), field=exc.field) from exc
        raise bad_request(str(exc), field=exc.field) from exc
    return event if event_id is None else dataclasses.replace(event, id=event_id)


def _unprocessable(exc: EventFeedError, item: dict[str, Any]) -> bool:
    """Each value fits the schema, but no event can be made of them: an end not later than
    its start, or a title of nothing but spaces and control characters."""
    if exc.field == "end" and "later than start" in str(exc):
        return True
    title = item.get("title")
    return exc.field == "title" and isinstance(title, str) and title != ""


async def create(request: web.Request) -> web.Response:
    await require_admin(request)
    event = await _event_body(request)
    db = request.app[STATE].db
    await as_admin(request, lambda c: eventstore.upsert(c, db, [event], utc_now()))
    return json_response(eventstore.view(event), status=201)


async def replace(request: web.Request) -> web.Response:
    await require_admin(request)
    event_id = request.match_info["event_id"]
    event = await _event_body(request, event_id)
    db = request.app[STATE].db

    async def work(connection: AsyncConnection) -> None:
        if await eventstore.one(connection, event_id) is None:
            raise APIError(404, "not_found", "no such event", event_id=event_id[:128])
        await eventstore.upsert(connection, db, [event], utc_now())

    await as_admin(request, work)
    return json_response(eventstore.view(event))


async def remove(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    if not await as_admin(request, lambda c: eventstore.remove(c, event_id)):
        raise APIError(404, "not_found", "no such event", event_id=event_id[:128])
    return web.Response(status=204)


async def show(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    async with request.app[STATE].db.reading() as connection:
        event = await eventstore.one(connection, event_id)
    if event is None:
        raise APIError(404, "not_found", "no such event", event_id=event_id[:128])
    return json_response(eventstore.view(event))


async def listing(request: web.Request) -> web.Response:
    params = request.query
    check_keys(params, frozenset({"cc", "kind", "since", "until"}))
    since = parse_time("since", params["since"]) if "since" in params else None
    until = parse_time("until", params["until"]) if "until" in params else None
    async with request.app[STATE].db.reading() as connection:
        found = await eventstore.listing(
            connection,
            cc=params.get("cc", "").upper() or None,
            kind=params.get("kind") or None,
            since=since,
            until=until,
        )
    return json_response({"events": [eventstore.view(e) for e in found]})


def _import_options(params: Any) -> ImportOptions:
    try:
        return options_for(params.get("cc") or None, params.get("kind") or None)
    except EventFeedError as exc:
        raise bad_request(str(exc)) from exc


async def import_feed(request: web.Request) -> web.Response:
    """A one-off import; the admin token is checked before the body is read."""
    check_keys(request.query, frozenset({"format", "cc", "kind"}))
    options = _import_options(request.query)
    state = request.app[STATE]
    async with state.db.reading() as connection:
        await check_admin(connection, request.headers.get("Authorization"))
    data = await request.content.read(MAX_FEED_BYTES + 1)
    if len(data) > MAX_FEED_BYTES:
        raise APIError(413, "payload_too_large", "feed exceeds the limit", limit=MAX_FEED_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request("the feed is not UTF-8 text") from exc
    now = utc_now()
    horizon = PollSettings.of(state.config).horizon(now)
    try:
        fmt = request.query.get("format") or sniff(text, request.content_type)
        parsed = await asyncio.to_thread(parse, text, fmt, options, horizon)
    except EventFeedError as exc:
        raise APIError(400, "invalid_feed", f"feed: {exc}") from exc
    db = state.db
    removed = await as_admin(request, lambda c: eventstore.store_import(c, db, parsed, now))
    body = {
        "imported": len(parsed.events),
        "removed": removed,
        "events": [eventstore.view(e) for e in parsed.events],
    }
    return json_response(body, status=201)


# "import" is its own resource, so OPTIONS on it names only POST in ``Allow``.
_ONE_EVENT: Final = "/api/v1/events/{event_id:(?!import$)[^/]+}"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/events", listing),
        web.post("/api/v1/events", create),
        web.post("/api/v1/events/import", import_feed),
        web.get(_ONE_EVENT, show),
        web.put(_ONE_EVENT, replace),
        web.delete(_ONE_EVENT, remove),
    ]
