"""``GET /api/v1/measurements``: stored measurements, filtered, in pages.

Pages follow (start_time, id) order and continue from an opaque cursor, so a page is
found through the index however deep into the results it is, and rows arriving meanwhile
neither shift nor repeat what was already read. Each item is the measurement exactly as
the probe sent it, beside what the collector concluded about it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Any, Final

import msgspec
from aiohttp import web
from sqlalchemy import Select, and_, literal, select, tuple_

from collector.api.errors import APIError, bad_request
from collector.api.filters import FILTER_KEYS, Filters, check_keys, parse_filters, parse_limit
from collector.state import STATE
from collector.store import schema

DEFAULT_LIMIT: Final = 100
_KEYS: Final = (FILTER_KEYS - {"method"}) | {"limit", "cursor"}
_m: Final = schema.measurements


class CollectorView(msgspec.Struct):
    verdict: str
    rule: str
    rules_version: str
    probe_verdict: str
    probe_id: str
    control: bool
    received_at: dt.datetime
    flags: list[str]


class Item(msgspec.Struct):
    measurement: msgspec.Raw
    collector: CollectorView


class Page(msgspec.Struct):
    results: list[Item]
    next_cursor: str | None


class _Cursor(msgspec.Struct, array_like=True):
    start_time: dt.datetime
    id: uuid.UUID


_encoder: Final = msgspec.json.Encoder()
_cursor_decoder: Final = msgspec.json.Decoder(_Cursor)


def encode_cursor(start_time: dt.datetime, measurement_id: uuid.UUID) -> str:
    data = _encoder.encode(_Cursor(utc(start_time), measurement_id))
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def decode_cursor(text: str) -> _Cursor:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor = _cursor_decoder.decode(data)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise bad_request("cursor: not a cursor from a previous page") from exc
    return _Cursor(utc(cursor.start_time), cursor.id)


def utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive times; everything stored is UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def filtered(query: Select[Any], f: Filters) -> Select[Any]:
    conditions = []
    if f.service is not None:
        conditions.append(_m.c.service == f.service)
    if f.cc is not None:
        conditions.append(_m.c.cc == f.cc)
    if f.asn is not None:
        conditions.append(_m.c.asn == f.asn)
    if f.verdict is not None:
        conditions.append(_m.c.verdict == f.verdict)
    if f.since is not None:
        conditions.append(_m.c.start_time >= f.since)
    if f.until is not None:
        conditions.append(_m.c.start_time < f.until)
    return query.where(and_(*conditions)) if conditions else query


_COLUMNS: Final = (
    _m.c.id, _m.c.start_time, _m.c.body, _m.c.verdict, _m.c.rule, _m.c.rules_version,
    _m.c.probe_verdict, _m.c.probe_id, _m.c.control, _m.c.received_at, _m.c.flags,
)  # fmt: skip


def page_query(f: Filters, cursor: _Cursor | None, limit: int) -> Select[Any]:
    query = filtered(select(*_COLUMNS), f)
    if cursor is not None:
        after = tuple_(
            literal(cursor.start_time, _m.c.start_time.type), literal(cursor.id, _m.c.id.type)
        )
        query = query.where(tuple_(_m.c.start_time, _m.c.id) > after)
    return query.order_by(_m.c.start_time, _m.c.id).limit(limit + 1)


def to_item(row: Any) -> Item:
    view = CollectorView(
        verdict=row.verdict,
        rule=row.rule,
        rules_version=row.rules_version,
        probe_verdict=row.probe_verdict,
        probe_id=row.probe_id,
        control=bool(row.control),
        received_at=utc(row.received_at),
        flags=[flag for flag in row.flags.split(",") if flag],
    )
    return Item(msgspec.Raw(bytes(row.body)), view)


async def list_measurements(request: web.Request) -> web.Response:
    state = request.app[STATE]
    params = request.query
    check_keys(params, _KEYS)
    f = parse_filters(params)
    limit = parse_limit(params, DEFAULT_LIMIT, state.config.query_max_limit)
    cursor = decode_cursor(params["cursor"]) if params.get("cursor") else None
    async with state.db.reading() as connection:
        rows = (await connection.execute(page_query(f, cursor, limit))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].start_time, rows[-1].id) if more else None
    page = Page([to_item(row) for row in rows], next_cursor)
    return web.Response(body=_encoder.encode(page), content_type="application/json")


async def get_measurement(request: web.Request) -> web.Response:
    state = request.app[STATE]
    text = request.match_info["measurement_id"]
    try:
        measurement_id = uuid.UUID(text)
    except ValueError as exc:
        raise APIError(404, "not_found", "no such measurement", id=text[:64]) from exc
    async with state.db.reading() as connection:
        query = select(*_COLUMNS).where(_m.c.id == measurement_id)
        row = (await connection.execute(query)).first()
    if row is None:
        raise APIError(404, "not_found", "no such measurement", id=str(measurement_id))
    return web.Response(body=_encoder.encode(to_item(row)), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/measurements", list_measurements),
        web.get("/api/v1/measurements/{measurement_id}", get_measurement),
    ]
