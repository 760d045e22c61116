"""Events API: announced livestreams, protest calls and the like (writes need admin)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Final

import msgspec
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.events import EventFeedError, parse_feed, parse_ical, parse_json
from alerts.model import Event
from collector.api.access import require_admin
from collector.api.bodies import json_response, read_json
from collector.api.errors import APIError, bad_request, unprocessable
from collector.api.filters import check_keys, parse_time
from collector.auth import check_admin, utc_now
from collector.state import STATE
from collector.store import events as eventstore

Country = Annotated[str, msgspec.Meta(pattern="^[A-Z]{2}$")]
Kind = Annotated[str, msgspec.Meta(pattern="^[a-z][a-z0-9_-]{0,31}$")]
MAX_FEED_BYTES: Final = 4 * 1024 * 1024
IMPORT_FORMATS: Final = ("ical", "rss", "atom", "json")


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Kind
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    cc: Country
    start: dt.datetime
    end: dt.datetime | None = None
    duration_seconds: Annotated[int, msgspec.Meta(ge=1, le=30 * 86400)] | None = None
    source_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    tags: list[Annotated[str, msgspec.Meta(max_length=64)]] = []
    id: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_.:@-]{1,128}$")] | None = None

    def to_event(self, event_id: str | None = None) -> Event:
        start = _utc(self.start, "start")
        end = _utc(self.end, "end") if self.end is not None else None
        if end is None and self.duration_seconds is not None:
            try:
                end = start + dt.timedelta(seconds=self.duration_seconds)
            except OverflowError as exc:
                raise bad_request("duration_seconds: ends after year 9999") from exc
        if end is not None and end <= start:
            raise unprocessable("end must be later than start")
        return Event(
            id=event_id or self.id or str(uuid.uuid4()),
            kind=self.kind,
            title=self.title,
            cc=self.cc,
            start=start,
            end=end,
            source_url=self.source_url,
            tags=tuple(self.tags),
        )


def _utc(moment: dt.datetime, name: str) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise bad_request(f"{name}: outside years 1-9999 in UTC") from exc


async def _admin_write(request: web.Request, work: Any) -> Any:
    state = request.app[STATE]

    async def guarded(connection: AsyncConnection) -> Any:
        await check_admin(connection, request.headers.get("Authorization"))
        return await work(connection)

    return await state.db.transaction(guarded)


async def create(request: web.Request) -> web.Response:
    await require_admin(request)
    event = (await read_json(request, EventIn)).to_event()
    db = request.app[STATE].db
    await _admin_write(request, lambda c: eventstore.upsert(c, db, [event], utc_now()))
    return json_response(eventstore.view(event), status=201)


async def replace(request: web.Request) -> web.Response:
    await require_admin(request)
    event_id = request.match_info["event_id"]
    event = (await read_json(request, EventIn)).to_event(event_id)
    db = request.app[STATE].db

    async def work(connection: AsyncConnection) -> None:
        if await eventstore.one(connection, event_id) is None:
            raise APIError(404, "not_found", "no such event", event_id=event_id[:128])
        await eventstore.upsert(connection, db, [event], utc_now())

    await _admin_write(request, work)
    return json_response(eventstore.view(event))


async def remove(request: web.Request) -> web.Response:
    event_id = request.match_info["event_id"]
    if not await _admin_write(request, lambda c: eventstore.remove(c, event_id)):
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


def parse_import(text: str, fmt: str) -> list[Event]:
    """A feed in one of ``IMPORT_FORMATS``; a malformed one is a 400 saying what is wrong."""
    parser = {"ical": parse_ical, "rss": parse_feed, "atom": parse_feed, "json": parse_json}
    try:
        return list(parser[fmt](text))
    except EventFeedError as exc:
        raise APIError(400, "invalid_feed", f"{fmt} feed: {exc}", format=fmt) from exc
    except RecursionError as exc:
        raise APIError(400, "invalid_feed", f"{fmt} feed: nested too deeply", format=fmt) from exc


def guess_format(content_type: str, text: str) -> str:
    lowered = content_type.lower()
    if "calendar" in lowered or text.lstrip().startswith("BEGIN:VCALENDAR"):
        return "ical"
    if "json" in lowered or text.lstrip()[:1] in ("[", "{"):
        return "json"
    if "xml" in lowered or text.lstrip().startswith("<"):
        return "rss"
    raise bad_request("cannot tell the feed's format: pass ?format=ical|rss|atom|json")


async def import_feed(request: web.Request) -> web.Response:
    await require_admin(request)
    check_keys(request.query, frozenset({"format"}))
    data = await request.content.read(MAX_FEED_BYTES + 1)
    if len(data) > MAX_FEED_BYTES:
        raise APIError(413, "payload_too_large", "feed exceeds the limit", limit=MAX_FEED_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request("the feed is not UTF-8 text") from exc
    fmt = request.query.get("format") or guess_format(request.content_type, text)
    if fmt not in IMPORT_FORMATS:
        raise bad_request(f"format: {fmt[:16]!r} is not one of {', '.join(IMPORT_FORMATS)}")
    events = parse_import(text, fmt)
    db = request.app[STATE].db
    await _admin_write(request, lambda c: eventstore.upsert(c, db, events, utc_now()))
    body = {"imported": len(events), "events": [eventstore.view(e) for e in events]}
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
