"""Announced events (livestreams, protest calls, …) in the database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import and_, delete, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.events import Parsed
from alerts.model import Event
from collector.store import schema
from collector.store.db import Database, as_utc, as_utc_or_none
from collector.store.rows import by_id, delete_by_id, equal_where_given

_e: Final = schema.events


def from_row(row: RowMapping) -> Event:
    start = as_utc(row["start"])
    return Event(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        cc=row["cc"],
        start=start,
        end=as_utc_or_none(row["end"]),
        source_url=row["source_url"],
        tags=tuple(json.loads(row["tags"])),
        series=row["series"],
    )


def view(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "title": event.title,
        "cc": event.cc,
        "start": event.start,
        "end": event.end,
        "source_url": event.source_url,
        "tags": list(event.tags),
        "series": event.series,
    }


def to_row(event: Event, now: dt.datetime, source_id: str | None = None) -> dict[str, Any]:
    """The view's columns, tags as JSON text, and when and from where the event came."""
    return {
        **view(event),
        "tags": json.dumps(list(event.tags)),
        "created_at": now,
        "source_id": source_id,
    }


async def upsert(
    connection: AsyncConnection,
    db: Database,
    events: Sequence[Event],
    now: dt.datetime,
    source_id: str | None = None,
) -> None:
    """Insert or replace by id, so importing the same feed twice changes nothing."""
    rows = [to_row(event, now, source_id) for event in events]
    if not rows:
        return
    statement = db.insert(_e)
    keep = ("id", "created_at") if source_id is not None else ("id", "created_at", "source_id")
    update = {k: statement.excluded[k] for k in rows[0] if k not in keep}
    await connection.execute(
        statement.on_conflict_do_update(index_elements=["id"], set_=update), rows
    )


async def store_import(
    connection: AsyncConnection,
    db: Database,
    parsed: Parsed,
    now: dt.datetime,
    source_id: str | None = None,
) -> int:
    """Write a parsed feed and drop what it cancelled; returns how many events went away.

    Gone are: single entries marked cancelled; occurrences of a series the feed expanded
    that start inside its horizon but are no longer among its occurrences (EXDATE,
    ``STATUS:CANCELLED``, a shortened RRULE); and, for a source, its upcoming events the
    feed no longer lists (a withdrawn announcement). Past events of a source stay even when
    the feed drops them: feeds keep their latest items only, and history is evidence.
    """
    await upsert(connection, db, parsed.events, now, source_id)
    kept = [e.id for e in parsed.events]
    gone = 0
    if parsed.cancelled:
        gone += await _delete(connection, _e.c.id.in_(sorted(parsed.cancelled)))
    if parsed.series:
        in_horizon = and_(
            _e.c.series.in_(sorted(parsed.series)),
            _e.c.start >= parsed.horizon.since,
            _e.c.start < parsed.horizon.until,
        )
        gone += await _delete(connection, in_horizon, keep=kept)
    if source_id is not None:
        upcoming = and_(_e.c.source_id == source_id, _e.c.start >= now)
        gone += await _delete(connection, upcoming, keep=kept)
    return gone


async def _delete(connection: AsyncConnection, where: Any, keep: Sequence[str] = ()) -> int:
    doomed = select(_e.c.id).where(where)
    ids = [r[0] for r in (await connection.execute(doomed)).all() if r[0] not in set(keep)]
    for start in range(0, len(ids), 500):
        await connection.execute(delete(_e).where(_e.c.id.in_(ids[start : start + 500])))
    return len(ids)


async def count_for_source(connection: AsyncConnection, source_id: str) -> int:
    query = select(func.count()).select_from(_e).where(_e.c.source_id == source_id)
    return int((await connection.execute(query)).scalar_one())


async def listing(
    connection: AsyncConnection,
    *,
    cc: str | None = None,
    kind: str | None = None,
    series: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[Event]:
    conditions = equal_where_given(_e, series=series, cc=cc, kind=kind)
    if since is not None:
        conditions.append(_e.c.start >= since)
    if until is not None:
        conditions.append(_e.c.start < until)
    query = select(_e).where(and_(True, *conditions)).order_by(_e.c.start, _e.c.id)
    return [from_row(r) for r in (await connection.execute(query)).mappings()]


async def one(connection: AsyncConnection, event_id: str) -> Event | None:
    row = await by_id(connection, _e, event_id)
    return None if row is None else from_row(row)


async def remove(connection: AsyncConnection, event_id: str) -> bool:
    return await delete_by_id(connection, _e, event_id)
