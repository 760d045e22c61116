"""Announced events (livestreams, protest calls, …) in the database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.model import Event
from collector.store import schema
from collector.store.db import Database

_e: Final = schema.events


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def from_row(row: RowMapping) -> Event:
    start = _aware(row["start"])
    assert start is not None
    return Event(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        cc=row["cc"],
        start=start,
        end=_aware(row["end"]),
        source_url=row["source_url"],
        tags=tuple(json.loads(row["tags"])),
    )


def to_row(event: Event, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind,
        "title": event.title,
        "cc": event.cc,
        "start": event.start,
        "end": event.end,
        "source_url": event.source_url,
        "tags": json.dumps(list(event.tags)),
        "created_at": now,
    }


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
    }


async def upsert(
    connection: AsyncConnection, db: Database, events: Sequence[Event], now: dt.datetime
) -> None:
    """Insert or replace by id, so importing the same feed twice changes nothing."""
    for event in events:
        row = to_row(event, now)
        statement = db.insert(_e).values(**row)
        update = {k: statement.excluded[k] for k in row if k not in ("id", "created_at")}
        await connection.execute(
            statement.on_conflict_do_update(index_elements=["id"], set_=update)
        )


async def listing(
    connection: AsyncConnection,
    *,
    cc: str | None = None,
    kind: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[Event]:
    conditions = []
    if cc is not None:
        conditions.append(_e.c.cc == cc)
    if kind is not None:
        conditions.append(_e.c.kind == kind)
    if since is not None:
        conditions.append(_e.c.start >= since)
    if until is not None:
        conditions.append(_e.c.start < until)
    query = select(_e).where(and_(True, *conditions)).order_by(_e.c.start, _e.c.id)
    return [from_row(r) for r in (await connection.execute(query)).mappings()]


async def one(connection: AsyncConnection, event_id: str) -> Event | None:
    row = (await connection.execute(select(_e).where(_e.c.id == event_id))).mappings().first()
    return None if row is None else from_row(row)


async def remove(connection: AsyncConnection, event_id: str) -> bool:
    result = await connection.execute(delete(_e).where(_e.c.id == event_id))
    return bool(result.rowcount)
