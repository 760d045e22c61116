"""Watch windows opened by hand, in the database."""

from __future__ import annotations

import datetime as dt
import json
from typing import Final

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.watch import Window
from collector.store import schema
from collector.store.db import as_utc
from collector.store.rows import delete_by_id

_w: Final = schema.watch_windows


def from_row(row: RowMapping) -> Window:
    services = row["services"]
    return Window(
        id=f"manual:{row['id']}",
        cc=row["cc"],
        start=as_utc(row["start"]),
        end=as_utc(row["end"]),
        services=tuple(json.loads(services)) if services is not None else None,
        title=row["title"],
        source="manual",
    )


async def add(
    connection: AsyncConnection, window_id: str, window: Window, now: dt.datetime
) -> None:
    services = json.dumps(list(window.services)) if window.services is not None else None
    await connection.execute(
        insert(_w).values(
            id=window_id, cc=window.cc, start=window.start, end=window.end,
            title=window.title, services=services, created_at=now,
        )
    )  # fmt: skip


async def current(
    connection: AsyncConnection, now: dt.datetime, cc: str | None = None
) -> list[Window]:
    """Windows that have not ended (of one country, or all)."""
    query = select(_w).where(_w.c.end > now)
    if cc is not None:
        query = query.where(_w.c.cc == cc)
    rows = (await connection.execute(query.order_by(_w.c.start, _w.c.id))).mappings()
    return [from_row(r) for r in rows]


async def remove(connection: AsyncConnection, window_id: str) -> bool:
    return await delete_by_id(connection, _w, window_id)
