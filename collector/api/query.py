"""``GET /api/v1/measurements``: stored measurements, filtered, in pages.

Pages follow (start_time, id) order and continue from an opaque cursor, so a page is
found through the index however deep into the results it is, and rows arriving meanwhile
neither shift nor repeat what was already read. Each item is the measurement exactly as
the probe sent it, beside what the collector concluded about it — for a researcher or
admin token. Without one, the probe is a daily pseudonym and times are to the hour
(`collector.api.privacy`); the cursor is the last row's id, so it carries no time either.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from aiohttp import web
from sqlalchemy import Select, and_, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from collector.api import privacy
from collector.api.errors import APIError, bad_request
from collector.api.filters import FILTER_KEYS, Filters, check_keys, parse_filters, parse_limit
from collector.auth import access_of
from collector.state import STATE
from collector.store import schema
from collector.store.db import as_utc
from collector.store.rows import equal_where_given

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


_encoder: Final = msgspec.json.Encoder()


def encode_cursor(measurement_id: uuid.UUID) -> str:
    """The last row's id: the next page starts after that row, whose time stays inside."""
    return base64.urlsafe_b64encode(measurement_id.bytes).decode().rstrip("=")


def decode_cursor(text: str) -> uuid.UUID:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return uuid.UUID(bytes=data)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("cursor: not a cursor from a previous page") from exc


def filtered(query: Select[Any], f: Filters) -> Select[Any]:
    conditions = equal_where_given(_m, service=f.service, cc=f.cc, asn=f.asn, verdict=f.verdict)
    if f.since is not None:
        conditions.append(_m.c.start_time >= f.since)
    if f.until is not None:
        conditions.append(_m.c.start_time < f.until)
    return query.where(and_(*conditions)) if conditions else query


_COLUMNS: Final = (
    _m.c.id, _m.c.start_time, _m.c.body, _m.c.verdict, _m.c.rule, _m.c.rules_version,
    _m.c.probe_verdict, _m.c.probe_id, _m.c.control, _m.c.received_at, _m.c.flags,
)  # fmt: skip


def page_query(f: Filters, cursor: uuid.UUID | None, limit: int) -> Select[Any]:
    query = filtered(select(*_COLUMNS), f)
    if cursor is not None:
        start = select(_m.c.start_time).where(_m.c.id == cursor).scalar_subquery()
        after = tuple_(start, literal(cursor, _m.c.id.type))
        query = query.where(tuple_(_m.c.start_time, _m.c.id) > after)
    return query.order_by(_m.c.start_time, _m.c.id).limit(limit + 1)


@dataclass(frozen=True)
class Audience:
    """Whom a response is for: exact data, or the public view made with ``key``."""

    exact: bool
    key: bytes

    def item(self, row: Any) -> Item:
        start, received, body = as_utc(row.start_time), as_utc(row.received_at), bytes(row.body)
        probe_id = row.probe_id
        if not self.exact:
            probe_id = privacy.pseudonym(self.key, probe_id, start)
            body = privacy.public_body(body, probe_id, start)
            received = privacy.to_hour(received)
        view = CollectorView(
            verdict=row.verdict,
            rule=row.rule,
            rules_version=row.rules_version,
            probe_verdict=row.probe_verdict,
            probe_id=probe_id,
            control=bool(row.control),
            received_at=received,
            flags=[flag for flag in row.flags.split(",") if flag],
        )
        return Item(msgspec.Raw(body), view)

    def filters(self, f: Filters) -> Filters:
        """Public time filters work at the grain of the public times."""
        if self.exact:
            return f
        since = privacy.to_hour(f.since) if f.since else None
        until = privacy.hour_ceiling(f.until) if f.until else None
        return dataclasses.replace(f, since=since, until=until)


async def audience(request: web.Request, connection: AsyncConnection) -> Audience:
    access = await access_of(connection, request.headers.get("Authorization"))
    return Audience(access != "public", request.app[STATE].pseudonym_key)


async def list_measurements(request: web.Request) -> web.Response:
    state = request.app[STATE]
    params = request.query
    check_keys(params, _KEYS)
    f = parse_filters(params)
    limit = parse_limit(params, DEFAULT_LIMIT, state.config.query_max_limit)
    cursor = decode_cursor(params["cursor"]) if params.get("cursor") else None
    async with state.db.reading() as connection:
        reader = await audience(request, connection)
        query = page_query(reader.filters(f), cursor, limit)
        rows = (await connection.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].id) if more else None
    page = Page([reader.item(row) for row in rows], next_cursor)
    return web.Response(body=_encoder.encode(page), content_type="application/json")


async def get_measurement(request: web.Request) -> web.Response:
    state = request.app[STATE]
    text = request.match_info["measurement_id"]
    try:
        measurement_id = uuid.UUID(text)
    except ValueError as exc:
        raise APIError(404, "not_found", "no such measurement", id=text[:64]) from exc
    async with state.db.reading() as connection:
        reader = await audience(request, connection)
        query = select(*_COLUMNS).where(_m.c.id == measurement_id)
        row = (await connection.execute(query)).first()
    if row is None:
        raise APIError(404, "not_found", "no such measurement", id=str(measurement_id))
    return web.Response(body=_encoder.encode(reader.item(row)), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/measurements", list_measurements),
        web.get("/api/v1/measurements/{measurement_id}", get_measurement),
    ]
